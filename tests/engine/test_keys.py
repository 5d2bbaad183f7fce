"""Server keys and member names: parse, format, the cluster and member of a key, natural order."""

from __future__ import annotations

import random

import pytest

from reconciler.core.keys import (
    ServerKey,
    cluster_of,
    format_member,
    member_of,
    natural_key,
    parse_member,
)


@pytest.mark.parametrize("text", ["shop/web/0", "shop/web/2", "shop/web/10", "a-b/db-primary/123"])
def test_parse_and_format_round_trip(text: str) -> None:
    key = ServerKey.parse(text)
    assert str(key) == text
    assert ServerKey.parse(str(key)) == key
    assert ServerKey.try_parse(text) == key


def test_parse_gives_the_parts() -> None:
    key = ServerKey.parse("shop/web/12")
    assert (key.cluster, key.name, key.ordinal) == ("shop", "web", 12)
    assert key.member == "shop/web"
    assert key == ServerKey("shop", "web", 12)
    assert hash(key) == hash(ServerKey("shop", "web", 12))


def test_a_key_is_frozen() -> None:
    key = ServerKey("shop", "web", 0)
    with pytest.raises(AttributeError):
        key.ordinal = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("", "found 1 part"),
        ("shop", "found 1 part"),
        ("shop/web", "found 2 parts"),
        ("shop/web/0/1", "found 4 parts"),
        ("/shop/web/0", "found 4 parts"),
        ("shop/web/0/", "found 4 parts"),
        ("/shop/web", "the cluster is empty"),
        ("shop/web/", "the ordinal '' is not"),
        ("//0", "the cluster is empty"),
        ("shop//0", "the member is empty"),
        ("shop/web/x", "the ordinal 'x' is not"),
        ("shop/web/-1", "the ordinal '-1' is not"),
        ("shop/web/+1", "the ordinal '+1' is not"),
        ("shop/web/1.5", "the ordinal '1.5' is not"),
        ("shop/web/ 1", "the ordinal ' 1' is not"),
        ("shop/web/01", "the ordinal '01' is not"),
        ("shop/web/²", "the ordinal '²' is not"),
    ],
)
def test_malformed_keys(text: str, fault: str) -> None:
    with pytest.raises(ValueError) as caught:
        ServerKey.parse(text)
    message = str(caught.value)
    assert message.startswith(f"malformed server key {text!r}: ")
    assert fault in message
    assert ServerKey.try_parse(text) is None


@pytest.mark.parametrize(
    ("cluster", "name", "ordinal"),
    [("", "web", 0), ("shop", "", 0), ("sh/op", "web", 0), ("shop", "w/eb", 0), ("shop", "web", -1)],
)
def test_a_key_that_would_not_parse_back_cannot_be_built(cluster: str, name: str, ordinal: int) -> None:
    with pytest.raises(ValueError, match="not a server key"):
        ServerKey(cluster, name, ordinal)


def test_keys_order_by_cluster_member_then_ordinal_as_a_number() -> None:
    texts = ["shop/web/10", "shop/app/3", "blog/web/0", "shop/web/2", "shop/web/0"]
    assert [str(k) for k in sorted(ServerKey.parse(t) for t in texts)] == [
        "blog/web/0",
        "shop/app/3",
        "shop/web/0",
        "shop/web/2",
        "shop/web/10",
    ]
    assert ServerKey("a", "x", 0) < ServerKey("a-b", "x", 0)  # part by part, not as one string


def test_the_key_of_a_member_and_ordinal() -> None:
    assert ServerKey.of("shop/web", 3) == ServerKey("shop", "web", 3)
    assert str(ServerKey.of("shop/web", 3)) == "shop/web/3"
    with pytest.raises(ValueError, match="malformed member 'shop/web/3'"):
        ServerKey.of("shop/web/3", 0)


def test_format_and_parse_member() -> None:
    assert format_member("shop", "web") == "shop/web"
    assert parse_member("shop/web") == ("shop", "web")
    assert parse_member(format_member("a-b", "db-1")) == ("a-b", "db-1")


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("shop", "found 1 part"),
        ("shop/web/0", "found 3 parts"),
        ("/web", "the cluster is empty"),
        ("shop/", "the member is empty"),
    ],
)
def test_malformed_members(text: str, fault: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_member(text)
    assert str(caught.value).startswith(f"malformed member {text!r}: ")
    assert fault in str(caught.value)


@pytest.mark.parametrize(
    ("text", "cluster", "member"),
    [
        ("shop/web/12", "shop", "shop/web"),  # a key
        ("shop/web", "shop", "shop/web"),  # a member
        ("shop", "shop", "shop"),  # a bare cluster name
        ("lonely", "lonely", "lonely"),
        ("", "", ""),
        ("a/b/c/d", "a", "a/b"),  # malformed keys still get an answer, never an error
        ("/web/0", "", "/web"),
        ("shop/web/x", "shop", "shop/web"),
    ],
)
def test_cluster_of_and_member_of(text: str, cluster: str, member: str) -> None:
    assert cluster_of(text) == cluster
    assert member_of(text) == member


def test_member_of_agrees_with_the_parsed_key() -> None:
    for text in ("shop/web/0", "blog/db-primary/7"):
        key = ServerKey.parse(text)
        assert member_of(text) == key.member
        assert cluster_of(text) == key.cluster
        assert member_of(key.member) == key.member


def test_natural_key_puts_web_2_before_web_10() -> None:
    assert natural_key("web/2") < natural_key("web/10")
    assert natural_key("shop/web/2") < natural_key("shop/web/10")
    assert sorted(["shop/web/10", "shop/web/2", "shop/web/1"], key=natural_key) == [
        "shop/web/1",
        "shop/web/2",
        "shop/web/10",
    ]
    assert "shop/web/10" < "shop/web/2"  # what plain string order would do instead


def test_natural_key_with_mixed_clusters() -> None:
    texts = ["shop/web/10", "blog/web/2", "shop/app/1", "blog/web/10", "shop/web/9", "api/web/0"]
    shuffled = texts[:]
    random.Random(7).shuffle(shuffled)
    assert sorted(shuffled, key=natural_key) == [
        "api/web/0",
        "blog/web/2",
        "blog/web/10",
        "shop/app/1",
        "shop/web/9",
        "shop/web/10",
    ]


def test_natural_key_numbers_inside_names() -> None:
    assert sorted(["shop/web10/0", "shop/web2/0", "shop/web/0"], key=natural_key) == [
        "shop/web/0",
        "shop/web2/0",
        "shop/web10/0",
    ]
    assert sorted(["shop10/a/0", "shop2/a/0"], key=natural_key) == ["shop2/a/0", "shop10/a/0"]


def test_natural_key_with_equal_prefixes() -> None:
    # a shorter text that is a prefix of a longer one sorts first, part by part
    assert sorted(["shop/web/0", "shop/web", "shop"], key=natural_key) == ["shop", "shop/web", "shop/web/0"]
    assert natural_key("a/x/0") < natural_key("a-b/x/0")  # "/" separates parts, it is not compared
    assert natural_key("shop/web/1") == natural_key("shop/web/1")
    # the same numbers written differently: still a total order, by the text itself
    assert natural_key("shop/web/02") != natural_key("shop/web/2")
    assert sorted(["shop/web/2", "shop/web/02"], key=natural_key) == ["shop/web/02", "shop/web/2"]


def test_natural_key_agrees_with_server_key_order_for_our_keys() -> None:
    texts = [f"{c}/{m}/{n}" for c in ("blog", "shop") for m in ("app", "web") for n in (0, 1, 2, 9, 10, 11)]
    shuffled = texts[:]
    random.Random(3).shuffle(shuffled)
    by_text = sorted(shuffled, key=natural_key)
    assert by_text == [str(k) for k in sorted(ServerKey.parse(t) for t in shuffled)]
    assert by_text == texts
