"""Kafka's .properties syntax, as java.util.Properties.load reads it."""

import pytest

from moldau.properties import PropertiesError, dumps, load_file, loads


def test_separators_and_blanks():
    text = "a=1\nb = 2\nc:3\nd 4\n  e\t=\t5  \nf\ng=\n"
    assert loads(text) == {"a": "1", "b": "2", "c": "3", "d": "4", "e": "5  ", "f": "", "g": ""}


def test_comments_and_blank_lines():
    assert loads("# c=1\n! d=2\n\n   \n  # e=3\nx=y\n") == {"x": "y"}


def test_continuation_drops_leading_blanks_of_next_line():
    assert loads("list=a,\\\n    b,\\\n\tc\n") == {"list": "a,b,c"}


def test_even_backslashes_do_not_continue():
    assert loads("path=c:\\\\\nnext=1\n") == {"path": "c:\\", "next": "1"}


def test_comment_line_ending_in_backslash_does_not_continue():
    assert loads("# comment \\\nkey=value\n") == {"key": "value"}


def test_continuation_line_starting_with_hash_is_content():
    assert loads("k=a\\\n#b\n") == {"k": "a#b"}


def test_escapes_in_keys_and_values():
    text = "my\\ key\\=x=tab\\there\\nnl \\u00e9\\q\n"
    assert loads(text) == {"my key=x": "tab\there\nnl éq"}


def test_malformed_unicode_escape_names_line():
    with pytest.raises(PropertiesError, match="line 2"):
        loads("a=1\nb=\\u12g4\n")


def test_crlf_and_cr_line_ends():
    assert loads("a=1\r\nb=2\rc=3") == {"a": "1", "b": "2", "c": "3"}


def test_last_value_wins_and_order_kept():
    assert list(loads("b=1\na=2\nb=3\n").items()) == [("b", "3"), ("a", "2")]


def test_round_trip_through_dumps():
    original = {"a key": "va=l:ue", "#x": " lead", "t": "tab\tnew\nline\\", "e": ""}
    assert loads(dumps(original)) == original


def test_load_file_falls_back_to_latin1(tmp_path):
    path = tmp_path / "w.properties"
    path.write_bytes(b"name=caf\xe9\n")
    assert load_file(str(path)) == {"name": "café"}
    path.write_bytes("name=café\n".encode("utf-8"))
    assert load_file(str(path)) == {"name": "café"}


def test_shipped_config_files_parse():
    worker = load_file("config/connect-standalone.properties")
    assert worker["value.converter"] == "org.apache.kafka.connect.json.JsonConverter"
    assert load_file("config/connect-file-source.properties")["topic"] == "connect-test"
    assert load_file("config/connect-file-sink.properties")["topics"] == "connect-test"
