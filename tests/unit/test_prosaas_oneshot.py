"""module_utils/prosaas_oneshot: the summary a one-shot container's log ends with."""

from prosaas_oneshot import last_json_object


def test_the_summary_is_the_last_json_object_line_of_the_log() -> None:
    log = (
        '{"applied": ["0108"]}\n'
        "applying 0109_call_log_timing ... done\n"
        '  {"applied": [{"version": "0109"}], "pending": []}  \n'
        "migrator: done\n"
    )
    assert last_json_object(log) == {"applied": [{"version": "0109"}], "pending": []}


def test_lines_that_are_not_a_json_object_are_passed_over() -> None:
    log = '{"exit_code": 0}\n{not json}\n["a", "list"]\n{"cut": \n'
    assert last_json_object(log) == {"exit_code": 0}


def test_a_log_without_a_summary_gives_an_empty_one() -> None:
    assert last_json_object("applying 0109 ... done\n[1, 2]\n") == {}
    assert last_json_object("") == {}
