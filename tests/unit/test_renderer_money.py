"""Invoice arithmetic: Decimal, ROUND_HALF_UP to cents, VAT per rate; and how amounts print."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from services.renderer.money import (
    compute_totals,
    format_money,
    format_price,
    format_quantity,
    format_rate,
    to_cents,
)
from shared.errors import PermanentJobError
from shared.jobtypes.render_data import InvoiceItem


def item(quantity: str, unit_price: str, vat_rate: str = "0") -> InvoiceItem:
    return InvoiceItem(
        description="thing", quantity=quantity, unit_price=unit_price, vat_rate=vat_rate
    )


def test_three_items_at_mixed_vat_rates_give_exact_totals() -> None:
    totals = compute_totals(
        [
            item("3", "19.99", "0.19"),  # 59.97
            item("2", "12.345", "0.07"),  # 24.69
            item("1.5", "80", "0.19"),  # 120.00
        ]
    )

    assert [line.net for line in totals.lines] == [
        Decimal("59.97"),
        Decimal("24.69"),
        Decimal("120.00"),
    ]
    groups = [(g.rate, g.net, g.vat) for g in totals.vat_groups]
    assert groups == [
        (Decimal("0.07"), Decimal("24.69"), Decimal("1.73")),  # 1.7283
        (Decimal("0.19"), Decimal("179.97"), Decimal("34.19")),  # 34.1943
    ]
    assert (totals.net, totals.vat, totals.gross) == (
        Decimal("204.66"),
        Decimal("35.92"),
        Decimal("240.58"),
    )


def test_halves_round_up_not_to_even() -> None:
    assert to_cents(Decimal("0.125")) == Decimal("0.13")  # half-even would give 0.12
    assert to_cents(Decimal("0.135")) == Decimal("0.14")
    assert to_cents(Decimal("-0.125")) == Decimal("-0.13")  # away from zero
    totals = compute_totals([item("1", "14.50", "0.05")])  # VAT 0.725
    assert totals.vat_groups[0].vat == Decimal("0.73")


def test_vat_is_rounded_once_per_rate_not_per_line() -> None:
    # Per line: 10 x round(0.0133) = 0.10; on the rate's sum: round(0.1330) = 0.13.
    totals = compute_totals([item("1", "0.07", "0.19")] * 10)

    assert totals.net == Decimal("0.70")
    assert totals.vat == Decimal("0.13")
    assert totals.gross == Decimal("0.83")


def test_floats_never_creep_in() -> None:
    totals = compute_totals([item("3", "0.1", "0")])  # 0.1 * 3 is 0.30000000000000004 in float

    assert totals.gross == Decimal("0.30")
    assert all(isinstance(v, Decimal) for v in (totals.net, totals.vat, totals.gross))


@pytest.mark.parametrize("rate", ["19", "1", "-0.1"])
def test_a_vat_rate_outside_zero_to_one_is_refused_by_the_model(rate: str) -> None:
    with pytest.raises(ValidationError) as caught:
        item("1", "1", rate)

    assert "a VAT rate is a fraction from 0 to below 1" in str(caught.value)


@pytest.mark.parametrize("rate", ["19", "1", "-0.1"])
def test_the_renderer_refuses_such_a_rate_again_should_the_model_be_bypassed(rate: str) -> None:
    # Defence in depth: the sums never run on a rate the model would have refused.
    unchecked = InvoiceItem.model_construct(
        description="thing", quantity="1", unit_price="1", vat_rate=rate
    )
    with pytest.raises(PermanentJobError) as caught:
        compute_totals([item("1", "1"), unchecked])

    assert "data.items.1.vat_rate: a VAT rate is a fraction" in str(caught.value)
    assert repr(rate) in str(caught.value)


def test_a_quantity_may_be_a_json_integer() -> None:
    totals = compute_totals([InvoiceItem(description="x", quantity=3, unit_price="0.10")])

    assert totals.lines[0].quantity == Decimal(3)
    assert totals.gross == Decimal("0.30")


@pytest.mark.parametrize(
    ("amount", "currency", "printed"),
    [
        ("1234.5", "EUR", "1,234.50 EUR"),
        ("0", "USD", "0.00 USD"),
        ("1234567.891", "GBP", "1,234,567.89 GBP"),
        ("-12.005", "CHF", "-12.01 CHF"),
    ],
)
def test_money_prints_with_two_decimals_and_the_currency(
    amount: str, currency: str, printed: str
) -> None:
    assert format_money(Decimal(amount), currency) == printed


@pytest.mark.parametrize(
    ("price", "printed"),
    [
        ("19.99", "19.99 EUR"),
        ("0.125", "0.125 EUR"),
        ("80", "80.00 EUR"),
        ("1500.5", "1,500.50 EUR"),
    ],
)
def test_unit_prices_keep_their_own_precision(price: str, printed: str) -> None:
    assert format_price(Decimal(price), "EUR") == printed


@pytest.mark.parametrize(
    ("quantity", "printed"), [("3", "3"), ("1.50", "1.5"), ("100", "100"), ("0.25", "0.25")]
)
def test_quantities_print_without_trailing_zeros(quantity: str, printed: str) -> None:
    assert format_quantity(Decimal(quantity)) == printed


@pytest.mark.parametrize(
    ("rate", "printed"), [("0.19", "19 %"), ("0.055", "5.5 %"), ("0", "0 %"), ("0.2", "20 %")]
)
def test_rates_print_as_percentages(rate: str, printed: str) -> None:
    assert format_rate(Decimal(rate)) == printed


def test_the_largest_amounts_allowed_stay_exact_to_the_cent() -> None:
    # 12-digit quantities and prices (the most shared.messages.Decimal lets through): sums
    # need more than Decimal's default 28 digits, which would round the cents away.
    line = item("999999999999", "999999999999.01", "0.19")  # 999999999998010000000000.99

    totals = compute_totals([line] * 101)

    assert totals.net == Decimal("100999999999799010000000099.99")
    assert totals.vat == Decimal("19189999999961811900000019.00")
    assert totals.gross == Decimal("120189999999760821900000118.99")
