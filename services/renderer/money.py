"""Invoice arithmetic in Decimal, never float.

Rounding (ROUND_HALF_UP to cents, the commercial rounding most tax offices expect):
- each line's net amount = quantity x unit price, rounded to cents;
- VAT is computed once per rate on the sum of that rate's rounded line amounts, then rounded
  to cents (per-rate, not per-line, so many small lines do not drift by rounding);
- the grand total = the sum of the rounded nets + the sum of the rounded VAT amounts.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext

from shared.errors import PermanentJobError
from shared.jobtypes.render_data import InvoiceItem

CENT = Decimal("0.01")
# Inputs have up to 18 significant digits (shared.messages.Decimal): products and sums need
# more than the default 28, or Decimal would round (or refuse to quantize) before we do.
_PRECISION = 80


def to_cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Line:
    description: str
    quantity: Decimal
    unit_price: Decimal
    vat_rate: Decimal  # a fraction: 0.19 is 19 %
    net: Decimal  # rounded to cents


@dataclass(frozen=True)
class VatGroup:
    rate: Decimal
    net: Decimal
    vat: Decimal


@dataclass(frozen=True)
class Totals:
    lines: list[Line]
    vat_groups: list[VatGroup]  # by rate, lowest first
    net: Decimal
    vat: Decimal
    gross: Decimal


def compute_totals(items: list[InvoiceItem]) -> Totals:
    with localcontext() as context:
        context.prec = _PRECISION
        return _totals(items)


def _totals(items: list[InvoiceItem]) -> Totals:
    lines = [_line(item, index) for index, item in enumerate(items)]
    by_rate: dict[Decimal, Decimal] = {}
    for line in lines:
        by_rate[line.vat_rate] = by_rate.get(line.vat_rate, Decimal(0)) + line.net
    groups = [
        VatGroup(rate=rate, net=net, vat=to_cents(net * rate))
        for rate, net in sorted(by_rate.items())
    ]
    net = sum((line.net for line in lines), Decimal(0))
    vat = sum((group.vat for group in groups), Decimal(0))
    return Totals(lines=lines, vat_groups=groups, net=net, vat=vat, gross=net + vat)


def _line(item: InvoiceItem, index: int) -> Line:
    rate = Decimal(item.vat_rate)
    if not Decimal(0) <= rate < Decimal(1):
        raise PermanentJobError(
            f"invalid invoice data: data.items.{index}.vat_rate: a VAT rate is a fraction "
            f'from 0 to below 1 ("0.19" for 19 %), got {item.vat_rate!r}',
            kind="invalid_data",
        )
    quantity, unit_price = Decimal(item.quantity), Decimal(item.unit_price)
    return Line(
        description=item.description,
        quantity=quantity,
        unit_price=unit_price,
        vat_rate=rate,
        net=to_cents(quantity * unit_price),
    )


# --- printing ---------------------------------------------------------------------------


def format_money(amount: Decimal, currency: str) -> str:
    """`1,234.50 EUR`: thousands grouped, always two decimals, the ISO code after."""
    return f"{to_cents(amount):,.2f} {currency}"


def format_price(amount: Decimal, currency: str) -> str:
    """A unit price keeps up to its own precision (0.125 stays 0.125), at least cents."""
    places = max(2, -_exponent(amount.normalize()))
    return f"{amount:,.{places}f} {currency}"


def format_quantity(quantity: Decimal) -> str:
    """`3`, `1.5`, `0.25`: no trailing zeros, no exponent."""
    places = max(0, -_exponent(quantity.normalize()))
    return f"{quantity:,.{places}f}"


def format_rate(rate: Decimal) -> str:
    """0.19 -> `19 %`, 0.055 -> `5.5 %`."""
    return f"{format_quantity(rate * 100)} %"


def _exponent(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return exponent if isinstance(exponent, int) else 0
