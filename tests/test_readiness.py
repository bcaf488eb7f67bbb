"""rules/consumer/readiness.py: every transition of the consumer's one readiness state."""

from __future__ import annotations

import pytest

from rules.consumer.readiness import TRANSITIONS, Readiness, ReadinessState, Signal

R, S = Readiness, Signal

EXPECTED: dict[tuple[Readiness, Signal], Readiness] = {
    (R.LOADING, S.POSITIONED_COMPLETE): R.CATCHING_UP,
    (R.CATCHING_UP, S.POSITIONED_COMPLETE): R.CATCHING_UP,
    (R.READY, S.POSITIONED_COMPLETE): R.READY,  # a rebalance keeps a caught-up consumer ready
    (R.LOADING, S.POSITIONED_INCOMPLETE): R.LOADING,
    (R.CATCHING_UP, S.POSITIONED_INCOMPLETE): R.LOADING,
    (R.READY, S.POSITIONED_INCOMPLETE): R.LOADING,
    (R.CATCHING_UP, S.CAUGHT_UP): R.READY,
    (R.LOADING, S.MARKED_COMPLETE): R.READY,
    (R.LOADING, S.STORE_LOST): R.REBUILDING,
    (R.CATCHING_UP, S.STORE_LOST): R.REBUILDING,
    (R.READY, S.STORE_LOST): R.REBUILDING,
    (R.REBUILDING, S.STORE_LOST): R.REBUILDING,
    (R.REBUILDING, S.REBUILT): R.LOADING,
    **{
        (state, S.STOPPED): R.STOPPED for state in (R.LOADING, R.CATCHING_UP, R.READY, R.REBUILDING)
    },
    **{
        (state, S.CRASHED): R.CRASHED for state in (R.LOADING, R.CATCHING_UP, R.READY, R.REBUILDING)
    },
}


def at(state: Readiness) -> ReadinessState:
    readiness = ReadinessState()
    readiness.state = state
    return readiness


def test_a_new_consumer_is_loading() -> None:
    readiness = ReadinessState()
    assert readiness.state is R.LOADING
    assert not readiness.store_complete and not readiness.rebuild_due


@pytest.mark.parametrize("state", list(Readiness), ids=lambda s: s.value)
@pytest.mark.parametrize("signal", list(Signal), ids=lambda s: s.name.lower())
def test_every_state_and_signal(state: Readiness, signal: Signal) -> None:
    """Listed pairs move where the table says; every other pair leaves the state alone."""
    assert at(state).advance(signal) is EXPECTED.get((state, signal), state)


def test_the_table_holds_exactly_the_expected_moves() -> None:
    table = {(s, sig): new for sig, moves in TRANSITIONS.items() for s, new in moves.items()}
    assert {k: v for k, v in table.items() if v is not k[0]} == {
        k: v for k, v in EXPECTED.items() if v is not k[0]
    }


@pytest.mark.parametrize(
    ("state", "complete"),
    [(R.LOADING, False), (R.CATCHING_UP, True), (R.READY, True), (R.REBUILDING, False),
     (R.STOPPED, False), (R.CRASHED, False)],
)
def test_store_complete_only_while_catching_up_or_ready(state: Readiness, complete: bool) -> None:
    assert at(state).store_complete is complete


def test_store_lost_keeps_the_reason_for_the_rebuild() -> None:
    readiness = at(R.READY)
    readiness.store_lost("flushed")
    assert readiness.rebuild_due and readiness.rebuild_reason == "flushed"
    assert readiness.advance(S.REBUILT) is R.LOADING and not readiness.rebuild_due


def test_stopped_and_crashed_are_final() -> None:
    for final in (R.STOPPED, R.CRASHED):
        for signal in Signal:
            assert at(final).advance(signal) is final
