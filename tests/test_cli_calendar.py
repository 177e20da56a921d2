"""`dossier calendar …` through click's CliRunner: exact output, exit codes, no tracebacks."""

from __future__ import annotations

import json
from types import SimpleNamespace

import click
import pytest
from click.testing import CliRunner

from schemas.cli_calendar import calendar_group


def run(*args: str, env: dict[str, str] | None = None, obj: object = None) -> tuple[int, str]:
    result = CliRunner().invoke(calendar_group, list(args), env=env, obj=obj)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def tet_day(day: int, weekday: str, name: str) -> dict[str, str]:
    return {"date": f"2024-02-{day:02d}", "weekday": weekday, "kind": "day_off", "name": name}


def weekend(day: int, weekday: str) -> dict[str, str]:
    name = "Thứ Bảy (Saturday)" if weekday == "Sat" else "Chủ nhật (Sunday)"
    return {"date": f"2024-02-{day:02d}", "weekday": weekday, "kind": "weekend", "name": name}


TET = "Tết Nguyên đán / Lunar New Year (Tết)"
TET_COMP = "Tết Nguyên đán (nghỉ bù) / Lunar New Year (Tết), compensatory day off"
TET_2024_SKIPPED = [
    tet_day(8, "Thu", TET),
    tet_day(9, "Fri", TET),
    weekend(10, "Sat"),
    weekend(11, "Sun"),
    tet_day(12, "Mon", TET),
    tet_day(13, "Tue", TET_COMP),
    tet_day(14, "Wed", TET_COMP),
    weekend(17, "Sat"),
    weekend(18, "Sun"),
]


def test_due_json_over_tet_2024() -> None:
    code, out = run("due", "2024-02-07T16:00+07:00", "--days", "3", "--format", "json")
    assert code == 0
    assert json.loads(out) == {
        "due_at": "2024-02-19T16:00:00+07:00",
        "received_at": "2024-02-07T16:00:00+07:00",
        "counting_from": "2024-02-07T16:00:00+07:00",
        "days": 3,
        "hours": 0.0,
        "convention": "working-hours",
        "working_hours": "07:00-11:30,13:30-17:00",
        "skipped_days": TET_2024_SKIPPED,
        "makeup_days_worked": [],
    }
    assert out.startswith('{\n  "due_at": "2024-02-19T16:00:00+07:00",\n')


def test_due_json_end_of_day_and_make_up_saturday() -> None:
    code, out = run("due", "2024-05-03T10:00", "--days", "1", "--convention", "end-of-day", "--format", "json")
    assert code == 0
    payload = json.loads(out)
    assert payload["due_at"] == "2024-05-04T17:00:00+07:00"
    assert payload["counting_from"] == "2024-05-04T07:00:00+07:00"
    assert payload["skipped_days"] == []
    assert payload["makeup_days_worked"] == [
        {
            "date": "2024-05-04",
            "weekday": "Sat",
            "kind": "makeup",
            "name": "Làm bù (thứ Bảy) cho thứ Hai 29/4/2024 / Make-up working Saturday for Mon 2024-04-29",
        }
    ]


def test_due_text_and_local_time_default() -> None:
    code, out = run("due", "2024-02-07T16:00", "--days", "3")
    assert code == 0
    assert out.splitlines()[:4] == [
        "Due at:         2024-02-19T16:00:00+07:00 (Mon)",
        "Received at:    2024-02-07T16:00:00+07:00 (Wed)",
        "Counting from:  2024-02-07T16:00:00+07:00",
        "Limit:          3 working day(s) + 0 working hour(s), working-hours convention, "
        "working hours 07:00-11:30,13:30-17:00",
    ]
    assert f"Skipped:        2024-02-08 Thu  {TET}" in out
    # a UTC time gives the same answer
    assert run("due", "2024-02-07T09:00Z", "--days", "3")[1] == out


def test_due_with_hours_after_closing_time() -> None:
    code, out = run("due", "2024-03-05T18:30", "--hours", "4", "--format", "json")
    assert code == 0
    payload = json.loads(out)
    assert (payload["counting_from"], payload["due_at"]) == ("2024-03-06T07:00:00+07:00", "2024-03-06T11:00:00+07:00")


def test_between_json_and_text() -> None:
    code, out = run("between", "2024-02-07T16:00", "2024-02-19T16:00", "--format", "json")
    assert code == 0
    assert json.loads(out) == {
        "start": "2024-02-07T16:00:00+07:00",
        "end": "2024-02-19T16:00:00+07:00",
        "working_time": "24 h 00 min",
        "hours": 24.0,
        "minutes": 1440.0,
        "working_days": 3.0,
        "hours_per_working_day": 8.0,
    }
    code, out = run("between", "2024-03-05T16:30", "2024-03-05T09:00")
    assert code == 0
    assert out == (
        "Working time from 2024-03-05T16:30:00+07:00 to 2024-03-05T09:00:00+07:00: "
        "-5 h 30 min (-330 min; -0.6875 working days of 8 h)\n"
    )


def test_show_year_json() -> None:
    code, out = run("show", "2024", "--format", "json")
    assert code == 0
    payload = json.loads(out)
    assert payload["year"] == 2024
    assert [(d["date"], d["kind"]) for d in payload["days_off"]] == [
        ("2024-01-01", "holiday"),
        ("2024-02-08", "holiday"),
        ("2024-02-09", "holiday"),
        ("2024-02-12", "holiday"),
        ("2024-02-13", "compensatory"),
        ("2024-02-14", "compensatory"),
        ("2024-04-18", "holiday"),
        ("2024-04-29", "swap_off"),
        ("2024-04-30", "holiday"),
        ("2024-05-01", "holiday"),
        ("2024-09-02", "holiday"),
        ("2024-09-03", "holiday"),
    ]
    assert [d["date"] for d in payload["makeup_workdays"]] == ["2024-05-04"]
    assert payload["makeup_workdays"][0]["name_vi"] == "Làm bù (thứ Bảy) cho thứ Hai 29/4/2024"
    assert all(d["source"] for d in payload["days_off"])


def test_show_year_text_lists_weekend_holidays() -> None:
    code, out = run("show", "2023")
    assert code == 0
    assert out.startswith("Days off in 2023:\n")
    assert "2023-09-02  Sat" in out and "2023-09-04  Mon      compensatory" in out
    assert "Make-up working days in 2023:\n(none)" in out


def test_working_hours_option_env_and_umbrella() -> None:
    args = ("due", "2024-03-05T08:00", "--days", "1", "--format", "json")
    expected = "2024-03-06T08:00:00+07:00"
    hours = "08:00-12:00,13:00-17:00"
    assert json.loads(run(*args, "--working-hours", hours)[1])["working_hours"] == hours
    assert json.loads(run(*args, env={"DOSSIER_WORKING_HOURS": hours})[1])["due_at"] == expected
    assert json.loads(run(*args, obj=SimpleNamespace(working_hours=hours))[1])["due_at"] == expected
    # 08:00 with the default hours + 8 h is 08:00 the next day as well; 12:30 shows the difference
    lunch = ("due", "2024-03-05T12:30", "--hours", "1", "--format", "json")
    assert json.loads(run(*lunch)[1])["due_at"] == "2024-03-05T14:30:00+07:00"
    assert json.loads(run(*lunch, "--working-hours", hours)[1])["due_at"] == "2024-03-05T14:00:00+07:00"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("due", "yesterday", "--days", "1"), "is not an ISO 8601 time"),
        (("due", "2024-03-05T08:00"), "--days N and/or --hours H"),
        (("due", "2024-03-05T08:00", "--hours", "2", "--convention", "end-of-day"), "working-hours convention"),
        (("due", "2024-03-05T08:00", "--days", "1", "--working-hours", "8-17"), "expected e.g."),
        (("due", "2024-03-05T08:00", "--days", "1", "--convention", "civil"), "Invalid value for '--convention'"),
        (("between", "2024-03-05T08:00", "2024-13-01"), "is not an ISO 8601 time"),
        (("show", "twenty"), "Invalid value for 'YEAR'"),
    ],
)
def test_bad_input_is_a_usage_error(args: tuple[str, ...], message: str) -> None:
    code, out = run(*args)
    assert code == 2
    assert message in out
    assert "Traceback" not in out


@pytest.mark.parametrize(
    "args",
    [
        ("due", "2026-12-30T09:00", "--days", "5"),
        ("due", "2027-01-04T09:00", "--days", "1"),
        ("between", "2017-12-29T09:00", "2018-01-03T09:00"),
        ("show", "2027"),
    ],
)
def test_uncovered_year_is_an_operational_error(args: tuple[str, ...]) -> None:
    code, out = run(*args)
    assert code == 1
    assert "it covers 2018–2026" in out
    assert "Traceback" not in out


def test_every_command_has_an_example() -> None:
    assert "Example" in run("--help")[1]
    for name, command in calendar_group.commands.items():
        assert isinstance(command, click.Command)
        code, out = run(name, "--help")
        assert code == 0 and "Example:" in out and "dossier calendar " + name in out, name
    assert "Asia/Ho_Chi_Minh local time" in run("due", "--help")[1]
    assert "DOSSIER_WORKING_HOURS" in run("between", "--help")[1]
