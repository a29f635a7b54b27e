from __future__ import annotations

import re
from pathlib import Path

import pytest

import shared.config
from shared.config import Settings, settings_or_exit
from shared.errors import ConfigError

CHECKOUT = Path(__file__).resolve().parents[2]


def test_defaults_need_no_environment() -> None:
    s = Settings.from_env({})
    assert s.amqp_url == "amqp://guest:guest@localhost:5672/%2F"
    assert s.namespace == ""
    assert s.max_attempts == len(s.retry_delays_ms) + 1


def test_every_documented_variable_is_read() -> None:
    s = Settings.from_env(
        {
            "AMQP_URL": "amqp://u:p@rabbit:5672/%2F",
            "JOBSUITE_NAMESPACE": "ci-42",
            "BLOB_DIR": "/data/blobs",
            "SMTP_HOST": "relay",
            "SMTP_PORT": "587",
            "SMTP_STARTTLS": "yes",
            "AUDIT_DIR": "/data/audit",
            "GATEWAY_PORT": "9000",
            "LOG_LEVEL": "DEBUG",
            "LOG_FORMAT": "console",
            "RETRY_DELAYS_MS": "100, 200,300",
            "MAX_DELIVERIES": "7",
            "MAX_IMAGE_PIXELS": "1000",
        }
    )
    assert s.amqp_url == "amqp://u:p@rabbit:5672/%2F"
    assert s.namespace == "ci-42"
    assert s.blob_dir == Path("/data/blobs")
    assert (s.smtp_host, s.smtp_port, s.smtp_starttls) == ("relay", 587, True)
    assert s.audit_dir == Path("/data/audit")
    assert s.gateway_port == 9000
    assert (s.log_level, s.log_format) == ("debug", "console")
    assert s.retry_delays_ms == (100, 200, 300)
    assert s.max_attempts == 4
    assert s.max_deliveries == 7
    assert s.max_image_pixels == 1000


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("SMTP_PORT", "abc", "SMTP_PORT must be an integer, got 'abc'"),
        ("SMTP_PORT", "70000", "SMTP_PORT must be a port number"),
        ("MAX_DELIVERIES", "0", "MAX_DELIVERIES must be a positive integer"),
        ("TASK_QUEUE_MAX_LENGTH", "-1", "TASK_QUEUE_MAX_LENGTH must be 0 or a positive integer"),
        ("SMTP_STARTTLS", "maybe", "SMTP_STARTTLS must be true or false"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT must be one of json, console"),
        ("RETRY_DELAYS_MS", "1s,2s", "RETRY_DELAYS_MS must be a comma-separated list"),
        ("RETRY_DELAYS_MS", "", "RETRY_DELAYS_MS must list at least one"),
        ("JOBSUITE_NAMESPACE", "a.b", "JOBSUITE_NAMESPACE may hold only"),
    ],
)
def test_a_bad_value_is_one_clear_error(name: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError, match="^" + says.replace("(", r"\(")):
        Settings.from_env({name: value})


def test_a_service_exits_with_one_line_on_bad_config(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        settings_or_exit({"GATEWAY_PORT": "http"})
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "GATEWAY_PORT must be an integer" in err


AMQP_URL_SHAPE = "AMQP_URL must look like amqp://user:pass@host:port/vhost (amqps:// for TLS); "


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("localhost:5672", "the scheme is missing, got 'localhost:5672'"),
        ("127.0.0.1:5672", "the scheme is missing"),
        ("", "the scheme is missing"),
        ("http://rabbit:5672/", "'http' is not amqp"),
        ("amqp://rabbit:http/", "Port could not be cast"),
        ("amqp://rabbit:70000/", "Port out of range"),
        ("amqp://rabbit:0/", "the port must be 1-65535"),
        ("amqp:///%2F", "it names no host"),
    ],
)
def test_an_amqp_url_of_the_wrong_shape_is_one_clear_error(value: str, says: str) -> None:
    with pytest.raises(ConfigError) as e:
        Settings.from_env({"AMQP_URL": value})
    assert str(e.value).startswith(AMQP_URL_SHAPE + says), str(e.value)


@pytest.mark.parametrize(
    "value",
    ["amqp://u:p@rabbit:5672/%2F", "amqps://u:p@rabbit/prod", "AMQP://rabbit", "amqp://[::1]:5672"],
)
def test_amqp_urls_of_the_right_shape_are_taken(value: str) -> None:
    assert Settings.from_env({"AMQP_URL": value}).amqp_url == value


@pytest.mark.parametrize(
    "value", ["amqp//guest:hunter2@rabbit:5672/", "guest:hunter2@rabbit", "amqp://u:hunter2@h:x/"]
)
def test_a_bad_amqp_url_is_shown_without_its_password(value: str) -> None:
    with pytest.raises(ConfigError) as e:
        Settings.from_env({"AMQP_URL": value})
    assert "hunter2" not in str(e.value) and ":***@" in str(e.value), str(e.value)


def test_the_smtp_password_is_not_shown_in_repr() -> None:
    assert "hunter2" not in repr(Settings.from_env({"SMTP_PASSWORD": "hunter2"}))


def test_gateway_settings_are_read_and_the_state_is_kept_apart_from_blobs_and_audit() -> None:
    s = Settings.from_env(
        {
            "BLOB_DIR": "/data/blobs",
            "GATEWAY_HOST": "127.0.0.1",
            "GATEWAY_PUBLISHERS": "2",
            "MANAGEMENT_URL": "http://rabbit:15672",
        }
    )
    assert (s.gateway_host, s.gateway_publishers) == ("127.0.0.1", 2)
    assert s.management_url == "http://rabbit:15672"
    assert s.state_dir == CHECKOUT / "var/state"
    assert Settings.from_env({"STATE_DIR": "/data/state"}).state_dir == Path("/data/state")
    beside = Settings.from_env({"BLOB_DIR": "/data/blobs", "STATE_DIR": "/data/blobs-state"})
    assert beside.state_dir == Path("/data/blobs-state")
    with pytest.raises(ConfigError, match=r"^GATEWAY_PUBLISHERS must be a positive integer"):
        Settings.from_env({"GATEWAY_PUBLISHERS": "0"})


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"BLOB_DIR": "/data", "STATE_DIR": "/data/state"}, "BLOB_DIR (/data)"),
        ({"BLOB_DIR": "/data/blobs", "STATE_DIR": "/data/blobs"}, "BLOB_DIR (/data/blobs)"),
        (
            {"AUDIT_DIR": "var/audit", "STATE_DIR": "./var/audit/../audit/s"},
            "AUDIT_DIR (var/audit)",
        ),
        ({"BLOB_DIR": "var/state/.."}, "BLOB_DIR (var/state/..)"),
    ],
)
def test_the_state_inside_the_blobs_or_the_audit_folder_is_one_clear_error(
    env: dict[str, str], says: str
) -> None:
    with pytest.raises(ConfigError, match="^STATE_DIR must not be inside " + re.escape(says)) as e:
        Settings.from_env(env)
    assert "\n" not in str(e.value)


def test_mail_settings_are_read_and_a_bad_chaos_spec_is_one_clear_error() -> None:
    s = Settings.from_env(
        {
            "SMTP_TIMEOUT": "5",
            "MAX_MAIL_BYTES": "1000",
            "MAILSINK_HOST": "0.0.0.0",
            "MAILSINK_CHAOS": "451:2:RCPT",
        }
    )
    assert (s.smtp_timeout, s.max_mail_bytes) == (5, 1000)
    assert (s.mailsink_host, s.mailsink_chaos) == ("0.0.0.0", "451:2:rcpt")
    assert Settings.from_env({}).mailsink_host == "127.0.0.1"
    assert Settings.from_env({"MAILSINK_CHAOS": "550::mail"}).mailsink_chaos == "550::mail"
    for bad in ("250", "451:x", "451:0", "451:2:quit", "4511"):
        with pytest.raises(ConfigError, match=r"^MAILSINK_CHAOS must look like CODE"):
            Settings.from_env({"MAILSINK_CHAOS": bad})


def test_audit_settings_are_read() -> None:
    s = Settings.from_env(
        {
            "AUDIT_HOST": "127.0.0.1",
            "AUDIT_PORT": "9001",
            "AUDIT_DIR": "/data/audit",
            "AUDIT_SEGMENT_BYTES": "4096",
            "AUDIT_RETENTION_DAYS": "7",
        }
    )
    assert (s.audit_host, s.audit_port, s.audit_dir) == ("127.0.0.1", 9001, Path("/data/audit"))
    assert (s.audit_segment_bytes, s.audit_retention_days) == (4096, 7)
    assert Settings.from_env({}).audit_host == "127.0.0.1"
    with pytest.raises(ConfigError, match=r"^AUDIT_RETENTION_DAYS must be a positive integer"):
        Settings.from_env({"AUDIT_RETENTION_DAYS": "0"})


def test_the_default_folders_are_the_checkouts_whatever_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`jobsuite audit verify` typed in another folder finds the log `make run` writes."""
    monkeypatch.chdir(tmp_path)
    s = Settings.from_env({})
    assert s.jobsuite_home == CHECKOUT
    assert (s.blob_dir, s.state_dir, s.audit_dir, s.mailsink_dir) == (
        CHECKOUT / "var/blobs",
        CHECKOUT / "var/state",
        CHECKOUT / "var/audit",
        CHECKOUT / "var/mail",
    )


def test_jobsuite_home_takes_relative_folders_and_leaves_absolute_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    s = Settings.from_env(
        {"JOBSUITE_HOME": "suite", "AUDIT_DIR": "logs/audit", "BLOB_DIR": "/data/blobs"}
    )
    assert s.jobsuite_home == tmp_path / "suite"  # itself relative to the working folder
    assert s.audit_dir == tmp_path / "suite/logs/audit"
    assert s.state_dir == tmp_path / "suite/var/state"
    assert s.blob_dir == Path("/data/blobs")


def test_installed_as_a_package_the_folders_are_in_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As in the Docker image: shared/ in site-packages, no Procfile beside it.
    site = tmp_path / "site-packages" / "shared" / "config.py"
    monkeypatch.setattr(shared.config, "__file__", str(site))
    monkeypatch.chdir(tmp_path)
    assert Settings.from_env({}).audit_dir == tmp_path / "var/audit"


def test_a_setting_may_come_from_the_file_its_name_file_variable_names(tmp_path: Path) -> None:
    url = tmp_path / "amqp_url"
    url.write_text("amqp://svc:s3cret@rabbit:5672/%2F\n")  # as `echo … > file` leaves it
    key = tmp_path / "audit_api_key"
    key.write_text("  jsk_abc\r\n")
    s = Settings.from_env({"AMQP_URL_FILE": str(url), "AUDIT_API_KEY_FILE": str(key)})
    assert s.amqp_url == "amqp://svc:s3cret@rabbit:5672/%2F"
    assert s.audit_api_key == "jsk_abc"
    assert "jsk_abc" not in repr(s)


def test_a_setting_and_its_file_together_are_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "port").write_text("587")
    with pytest.raises(ConfigError, match="set SMTP_PORT or SMTP_PORT_FILE, not both"):
        Settings.from_env({"SMTP_PORT": "25", "SMTP_PORT_FILE": str(tmp_path / "port")})


def test_an_unreadable_or_bad_secret_file_is_named_and_its_content_never_shown(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(ConfigError, match=r"SMTP_PASSWORD_FILE: cannot read .*nowhere"):
        Settings.from_env({"SMTP_PASSWORD_FILE": str(missing)})
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        Settings.from_env({"AUDIT_SIGNING_KEY_FILE": str(binary)})
    short = tmp_path / "short"
    short.write_text("tiny-secret")
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"AUDIT_SIGNING_KEY_FILE": str(short)})
    assert "AUDIT_SIGNING_KEY" in str(refused.value) and "tiny-secret" not in str(refused.value)
