"""Settings precedence and refusal of bad settings."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

import lightningstor_server
from lightningstor_server.cli import main
from lightningstor_server.config import Config, ConfigError, load_config
from lightningstor_server.daemon import master_key_location


def test_defaults() -> None:
    config = load_config(environ={})
    assert config.data_dir == Path("./var/lightningstor")
    assert config.s3_listen == "127.0.0.1:9000"
    assert config.grpc_listen == "127.0.0.1:50051"


def test_flags_beat_environment_beat_file(tmp_path: Path) -> None:
    file = tmp_path / "ls.toml"
    file.write_text(
        's3_listen = "127.0.0.1:1111"\ngrpc_listen = "127.0.0.1:2222"\nio_workers = 3\n'
    )
    env = {"LIGHTNINGSTOR_GRPC_LISTEN": "127.0.0.1:3333", "LIGHTNINGSTOR_IO_WORKERS": "5"}
    config = load_config(file=file, environ=env, overrides={"io_workers": 7, "region": None})
    assert config.s3_listen == "127.0.0.1:1111"  # file only
    assert config.grpc_listen == "127.0.0.1:3333"  # environment beats file
    assert config.io_workers == 7  # flag beats both
    assert config.region == "us-east-1"  # an unset flag changes nothing


@pytest.mark.parametrize(
    ("content", "env", "message"),
    [
        ("s3_port = 1\n", {}, "unknown setting 's3_port'"),
        ("io_workers = 'many'\n", {}, "setting 'io_workers'"),
        ("", {"LIGHTNINGSTOR_S3_LISTEN": "nowhere"}, "setting 's3_listen'"),
        ("", {"LIGHTNINGSTOR_BOGUS": "1"}, "unknown setting 'bogus'"),
        ("", {"LIGHTNINGSTOR_ROOT_ACCESS_KEY": "AKIAONLYHALF0000"}, "go together"),
        ("not toml = = 1", {}, "ls.toml"),
        ("inline_max_bytes = 65537\n", {}, "setting 'inline_max_bytes' must be 0 to 65536"),
        ("inline_max_bytes = -1\n", {}, "setting 'inline_max_bytes' must be 0 to 65536"),
        ("", {"LIGHTNINGSTOR_EVENT_LOOP": "trio"}, "expected asyncio or uvloop, got 'trio'"),
        ("log_format = 'xml'\n", {}, "expected text or json, got 'xml'"),
    ],
)
def test_bad_settings_name_the_setting(
    tmp_path: Path, content: str, env: dict[str, str], message: str
) -> None:
    file = tmp_path / "ls.toml"
    file.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_config(file=file, environ=env)


def test_cli_refuses_bad_config_before_starting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "ls.toml"
    file.write_text("log_level = 'chatty'\n")
    assert main(["serve", "--config", str(file), "--data-dir", str(tmp_path / "d")]) == 2
    assert "log_level" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_list_settings_from_environment_and_file(tmp_path: Path) -> None:
    env = {"LIGHTNINGSTOR_VIRTUAL_HOST_DOMAINS": "s3.example.com, S3.Internal ,"}
    assert load_config(environ=env).virtual_host_domains == ("s3.example.com", "s3.internal")
    file = tmp_path / "ls.toml"
    file.write_text('virtual_host_domains = ["a.test", "b.test"]\nmin_part_bytes = 1024\n')
    config = load_config(file=file, environ={})
    assert config.virtual_host_domains == ("a.test", "b.test")
    assert config.min_part_bytes == 1024
    file.write_text("virtual_host_domains = [1, 2]\n")
    with pytest.raises(ConfigError, match="virtual_host_domains"):
        load_config(file=file, environ={})


def test_tls_files_go_together() -> None:
    with pytest.raises(ConfigError, match="tls"):
        load_config(environ={"LIGHTNINGSTOR_TLS_CERT_FILE": "/etc/cert.pem"})


def test_master_key_location(tmp_path: Path) -> None:
    config = load_config(environ={}, overrides={"data_dir": tmp_path / "d"})
    assert master_key_location(config, {}) == tmp_path / "d" / "master.key"
    (tmp_path / "creds").mkdir()
    (tmp_path / "creds" / "master.key").write_bytes(b"k" * 32)
    systemd = {"CREDENTIALS_DIRECTORY": str(tmp_path / "creds")}
    assert master_key_location(config, systemd) == tmp_path / "creds" / "master.key"
    explicit = load_config(environ={"LIGHTNINGSTOR_MASTER_KEY_FILE": "/etc/k"})
    assert master_key_location(explicit, systemd) == Path("/etc/k")


def test_print_config_round_trips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env_args = ["serve", "--data-dir", str(tmp_path / 'a "quoted" dir'), "--print-config"]
    assert main(env_args) == 0
    printed = capsys.readouterr().out
    file = tmp_path / "printed.toml"
    file.write_text(printed)
    again = load_config(file=file, environ={})
    assert again == load_config(environ={}, overrides={"data_dir": tmp_path / 'a "quoted" dir'})


def test_shipped_example_names_every_setting_with_its_default() -> None:
    example = Path(lightningstor_server.__file__).parent / "lightningstor.example.toml"
    loaded = load_config(file=example, environ={})
    assert loaded == load_config(environ={})
    text = example.read_text()
    for item in fields(Config):
        assert item.name in text, f"{item.name} is missing from the example configuration"


def test_print_config_says_where_each_value_came_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unit's Environment=LIGHTNINGSTOR_DATA_DIR silently beat the TOML file's data_dir;
    --print-config now names the winner of every setting that is not a default."""
    settings = tmp_path / "settings.toml"
    settings.write_text('data_dir = "/from/the/file"\nregion = "eu-west-1"\n')
    monkeypatch.setenv("LIGHTNINGSTOR_DATA_DIR", str(tmp_path / "from-env"))
    assert main(["serve", "--config", str(settings), "--log-level", "debug", "--print-config"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[printed.index("# data_dir: from LIGHTNINGSTOR_DATA_DIR") + 1] == (
        f'data_dir = "{tmp_path / "from-env"}"'
    )
    assert f"# region: from {settings}" in printed
    assert "# log_level: from --log-level" in printed
    assert not any(line.startswith("# s3_listen: from") for line in printed)  # a default


def test_the_readme_settings_table_names_every_setting() -> None:
    """log_format was missing from it (issue 20, item 10)."""
    readme = (Path(lightningstor_server.__file__).parents[1] / "README.md").read_text()
    table = readme[readme.index("## Configuration") : readme.index("## S3 feature table")]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    named = {name for row in rows for name in re.findall(r"`([a-z0-9_]+)`", row.split(" | ")[0])}
    missing = {item.name for item in fields(Config)} - named
    assert not missing, f"missing from the README's settings table: {sorted(missing)}"
