"""The OSC address-pattern matcher: what OSC 1.0 says, agreement with python-osc's regular
expressions where those are fast, caps, and no input that makes it slow or makes it raise."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pythonosc.dispatcher import Dispatcher

from installation.control.osc.addresses import ADDRESSES
from installation.control.osc.patterns import MAX_ITEMS, MAX_PATTERN, AddressMap, pattern_problem

TABLE = AddressMap((address, address) for address in ADDRESSES)


def reference(pattern: str) -> list[str]:
    """python-osc's answer (a regular expression per pattern, fine on short ones), less the
    addresses with another number of parts: its ``[!a-e]`` also matches a ``/``, where OSC
    1.0 matches part by part."""
    dispatcher = Dispatcher()
    for address in ADDRESSES:
        dispatcher.map(address, address)
    matched = [handler.callback for handler in dispatcher.handlers_for_address(pattern)]
    return [address for address in matched if address.count("/") == pattern.count("/")]


@pytest.mark.parametrize(
    ("pattern", "matched"),
    [
        ("/scene", ["/scene"]),
        ("/scene/n?xt", ["/scene/next"]),
        ("/scene/*", ["/scene/next", "/scene/prev"]),
        ("/*/next", ["/scene/next", "/face/next"]),
        ("/{scene,seed}", ["/scene", "/seed"]),
        ("/s{,c}e{ne,ed}", ["/scene", "/seed"]),
        ("/[!a-r]ee?", ["/seed"]),
        ("/[fg]reeze", ["/freeze"]),
        ("/b[a-e]at", ["/beat"]),
        ("/morph*", ["/morph"]),
        ("/s*", ["/scene", "/seed", "/status"]),
        ("/scen", []),
        ("/scene/", []),
        ("/*", [a for a in ADDRESSES if a.count("/") == 1]),
        ("/*[!a-e]*t", ["/blackout"]),  # python-osc's [!a-e] also takes the / of /scene/next
        ("/" + "*" * 27 + "!", []),
        ("/ping" + "?" * 3, []),
    ],
)
def test_osc_patterns(pattern: str, matched: list[str]) -> None:
    assert pattern_problem(pattern) is None
    assert TABLE.match(pattern) == matched


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("/" + "a" * MAX_PATTERN, "longer than 256"),
        ("/" + "{,}" * 18, "more than 16 wildcard items"),
        ("/" + "?*" * 9, "more than 16 wildcard items"),
        ("/" + "{a,b,c,d,e,f,g,h,i}" * 4, "more than 32 strings"),
        ("/scene/[a-z", "unclosed ["),
        ("/{next,prev", "unclosed {"),
        ("/next]", "closes nothing"),
        ("scene", "not starting with /"),
    ],
)
def test_patterns_over_a_cap_are_refused(pattern: str, problem: str) -> None:
    assert problem in (pattern_problem(pattern) or "")
    assert TABLE.match(pattern) == []


def test_the_worst_patterns_under_the_caps_are_matched_without_backtracking() -> None:
    """Patterns of the kind that take python-osc's regular expressions seconds to minutes
    (test_osc_fuzz.py sends them to a live show and times the next ``/status``)."""
    worst = [
        "/" + "*" * 200 + "!",
        "/" + "{,}" * (MAX_ITEMS - 1) + "!",
        "/" + "*?" * (MAX_ITEMS // 2) + "!",
        "/" + "*{,}" * (MAX_ITEMS // 2) + "!",
        "/" + "*a" * MAX_ITEMS + "!",
        "/*/" + "*" * 200 + "!",
    ]
    for pattern in worst:
        assert pattern_problem(pattern) is None, pattern
        assert TABLE.match(pattern) == [], pattern


LETTERS = "abcdefghijklmnoprstuvxz"


@st.composite
def part_patterns(draw: st.DrawFn, part: str) -> str:
    """A pattern for ``part`` built item by item, each item usually covering the character
    it replaces, so many patterns match and the rest nearly do."""
    out = []
    for char in part:
        kind = draw(st.sampled_from("cc?*[{x"))
        other = draw(st.sampled_from(LETTERS))
        if kind == "c":
            out.append(char)
        elif kind == "x":
            out.append(other)
        elif kind in "?*":
            out.append(kind)
        elif kind == "[":
            negated = draw(st.booleans())
            low, high = sorted((char, other))
            out.append(f"[{'!' if negated else ''}{low}-{high}]")
        else:
            out.append("{" + ",".join(draw(st.permutations([char, other, ""]))) + "}")
    return "".join(out)


@st.composite
def patterns(draw: st.DrawFn) -> str:
    address = draw(st.sampled_from(sorted(ADDRESSES)))
    parts = [draw(part_patterns(part)) for part in address.split("/")[1:]]
    return "/" + "/".join(parts)


@settings(max_examples=400, deadline=None)
@given(patterns())
def test_matcher_agrees_with_python_osc_on_short_patterns(pattern: str) -> None:
    assume(pattern.count("*") <= 4)  # where python-osc's backtracking stays quick
    if pattern_problem(pattern) is None:
        assert TABLE.match(pattern) == reference(pattern)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="/*?[]{}!,-abcens", max_size=40) | st.text(max_size=300))
def test_any_text_is_matched_or_refused_without_raising(pattern: str) -> None:
    problem = pattern_problem(pattern)
    matched = TABLE.match(pattern)
    assert problem is None or matched == []
    assert set(matched) <= set(ADDRESSES)
