import pytest

from crypto import CID_DAG_PB, CID_RAW, BadCID, cid_from_str, cid_to_str, make_cid


def test_round_trip_base32():
    for codec in (CID_RAW, CID_DAG_PB):
        cid = make_cid(codec, b"x")
        text = cid_to_str(cid)
        assert text.startswith("bafk" if codec == CID_RAW else "bafy")
        assert cid_from_str(text) == cid


def test_other_forms_are_converted_to_v1():
    # CIDv0 of the empty UnixFS directory, and the same CID in base58btc v1
    assert cid_to_str(cid_from_str("QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn")) == \
        "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"
    assert cid_to_str(cid_from_str("zdj7WbTaiJT1fgatdet9Ei9iDB5hdCxkbVyhyh8YTUnXMiwYi")) == \
        "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"


@pytest.mark.parametrize("bad", ["", "hello", "b" + "a" * 58, "b" + "1" * 58,
                                 # sha2-512 / dag-cbor CIDs are valid CIDs we do not use
                                 "bafyreidykglsfhoixmivffc5uwhcgshx4j465xwqntbmu43nb2dzqwfvae"])
def test_rejects(bad):
    with pytest.raises(BadCID):
        cid_from_str(bad)
