"""StopMatcher: stop strings found across piece boundaries, with minimal hold-back."""
from llmasos.stop_strings import StopMatcher


def run(pieces, stops):
    m = StopMatcher(stops)
    out = []
    for p in pieces:
        o, stopped = m.feed(p)
        out.append(o)
        if stopped:
            return "".join(out), True
    out.append(m.flush())
    return "".join(out), False


def test_no_stops_passes_through():
    assert run(["a", "b"], []) == ("ab", False)


def test_stop_across_pieces():
    assert run(["Hello wo", "rld! more"], ["world"]) == ("Hello ", True)


def test_partial_prefix_released_when_not_stop():
    m = StopMatcher(["STOP"])
    assert m.feed("abc ST") == ("abc ", False)
    assert m.feed("x") == ("STx", False)


def test_earliest_stop_wins():
    assert run(["x END y STOP"], ["STOP", "END"]) == ("x ", True)


def test_flush_returns_held_text():
    assert run(["ab", "S"], ["STOP"]) == ("abS", False)
