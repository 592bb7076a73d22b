"""module_utils/prosaas_proxy_runtime: the slots read from HAProxy 2.6's runtime API replies."""

import prosaas_proxy_runtime as runtime
import pytest

# The reply to state_command("prosaas-api") as HAProxy 2.6 gives it, its show stat columns
# cut to those read (the header names them, so the rest do not matter).
REPLY = """\
1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight \
srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state \
srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl \
srv_check_port srv_check_addr srv_agent_addr srv_agent_port
4 prosaas-api 1 prosaas-api1 - 0 40 1 1 5 1 0 0 14 0 0 0 prosaas-api 8000 - 0 0 - - 0
4 prosaas-api 2 prosaas-api2 172.18.0.5 2 8 1 1 5 15 3 1 6 0 0 0 prosaas-api 8000 - 0 0 - - 0
4 prosaas-api 3 prosaas-api3 172.18.0.7 2 0 1 1 5 15 3 1 6 0 0 0 prosaas-api 8000 - 0 0 - - 0

# pxname,svname,qcur,qmax,scur,smax,status,check_status,addr,check_desc,
prosaas-api,prosaas-api1,0,0,0,1,MAINT (resolution),,,,
prosaas-api,prosaas-api2,0,0,1,3,DRAIN,L7OK,172.18.0.5:8000,Layer7 check passed,
prosaas-api,prosaas-api3,0,0,2,2,UP,L7OK,172.18.0.7:8000,Layer7 check passed,
prosaas-calls,prosaas-calls1,0,0,9,9,UP,L7OK,172.18.0.6:8000,Layer7 check passed,

"""


def api_slots() -> list[runtime.Slot]:
    slots = runtime.parse_slots(REPLY, "prosaas-api")
    assert slots is not None
    return slots


def test_each_slot_has_its_address_state_and_sessions() -> None:
    slots = api_slots()
    assert [slot.as_result() for slot in slots] == [
        {"name": "prosaas-api1", "address": None, "state": "MAINT", "sessions": 0},
        {"name": "prosaas-api2", "address": "172.18.0.5", "state": "DRAIN", "sessions": 1},
        {"name": "prosaas-api3", "address": "172.18.0.7", "state": "UP", "sessions": 2},
    ]
    assert runtime.slot_of(slots, "172.18.0.7") == slots[2]
    assert runtime.slot_of(slots, "172.18.0.9") is None
    assert slots[1].check == "L7OK Layer7 check passed"
    assert runtime.summary(slots) == (
        "prosaas-api1 empty, prosaas-api2 172.18.0.5 DRAIN, prosaas-api3 172.18.0.7 UP"
    )


def test_an_empty_slot_keeps_the_drain_its_last_container_had() -> None:
    """A drained slot whose container went (resolution maintenance plus the forced drain):
    the next container DNS puts there needs `state ready` to get requests."""
    empty = api_slots()[0]
    assert empty.needs("ready")
    assert not empty.needs("drain")


@pytest.mark.parametrize(
    ("op_state", "admin_state", "state"),
    [
        (2, 0, "UP"),
        (1, 0, "UP"),  # starting (slowstart) takes requests
        (0, 0, "DOWN"),  # failing its health check
        (0, 8, "DOWN"),  # drained, then its container died: DOWN says more
        (2, 8, "DRAIN"),
        (2, 1, "MAINT"),
        (2, 9, "MAINT"),
    ],
)
def test_states_rank_maint_then_down_then_drain(
    op_state: int, admin_state: int, state: str
) -> None:
    slot = runtime.Slot("s1", "10.0.0.2", op_state, admin_state, 0, "")
    assert slot.state == state


def test_an_unknown_backend_is_none_and_any_other_reply_an_error() -> None:
    assert runtime.parse_slots("Can't find backend.\n\nNo such proxy.\n", "x") is None
    with pytest.raises(ValueError, match=r"^not the servers' state: Unknown command"):
        runtime.parse_slots("\nUnknown command: 'shwo'\n", "x")


def test_backends_are_the_names_show_backend_lists() -> None:
    reply = "# name\nprosaas-api\nprosaas-calls\n\n"
    assert runtime.parse_backends(reply) == ["prosaas-api", "prosaas-calls"]


# The reply to "set server prosaas-api/prosaas-api2 state drain; set server
# prosaas-calls/nope state drain; " + ALL_STATE_COMMAND: the first set taken (a blank line),
# the second refused, then every backend's slots.
ALL_BACKENDS_REPLY = """
No such server.

1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight \
srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state \
srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl \
srv_check_port srv_check_addr srv_agent_addr srv_agent_port
4 prosaas-api 2 prosaas-api2 172.18.0.5 2 8 1 1 5 15 3 1 6 0 0 0 prosaas-api 8000 - 0 0 - - 0
6 prosaas-calls 1 prosaas-calls1 172.18.0.6 2 0 1 1 5 15 3 1 6 0 0 0 prosaas-calls 8000 - 0 0 - - 0

# pxname,svname,qcur,qmax,scur,smax,status,check_status,addr,check_desc,
prosaas-api,prosaas-api2,0,0,1,3,DRAIN,L7OK,172.18.0.5:8000,Layer7 check passed,
prosaas-calls,prosaas-calls1,0,0,9,9,UP,L7OK,172.18.0.6:8000,Layer7 check passed,

"""


def test_a_read_of_every_backend_gives_each_backend_its_own_slots() -> None:
    api = runtime.parse_slots(ALL_BACKENDS_REPLY, "prosaas-api")
    calls = runtime.parse_slots(ALL_BACKENDS_REPLY, "prosaas-calls")
    assert [(s.name, s.state, s.sessions) for s in api or []] == [("prosaas-api2", "DRAIN", 1)]
    assert [(s.name, s.state, s.sessions) for s in calls or []] == [("prosaas-calls1", "UP", 9)]
    assert runtime.parse_slots(ALL_BACKENDS_REPLY, "prosaas-other") == []
    assert runtime.backends_in(ALL_BACKENDS_REPLY) == ["prosaas-api", "prosaas-calls"]


def test_what_the_commands_before_a_read_refused_is_one_line_each() -> None:
    assert runtime.refusals_before_read(ALL_BACKENDS_REPLY) == ["No such server."]
    assert runtime.refusals_before_read(REPLY) == []
    assert runtime.refusals_before_read("\n" + REPLY) == []
