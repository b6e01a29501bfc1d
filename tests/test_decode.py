import io
import json

import numpy as np
import pytest

from pdseg.decode import InputError, WorkLimits, decode_request


def npy_bytes(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_json_single_and_many_signals_with_options():
    one = decode_request({"body": {"signal": [1, 2, 3], "threshold": 0.3}}, "application/json")
    assert [s.tolist() for s in one.signals] == [[1.0, 2.0, 3.0]]
    assert one.options.threshold == 0.3
    many = decode_request({"body": {"signals": [[1, 2], [3, 4, 5]], "sampling_rate_hz": 1e6,
                                    "power_frequency_hz": 50}}, "application/json")
    assert [s.size for s in many.signals] == [2, 3]
    assert many.options.period() == pytest.approx(20000.0)


def test_json_body_still_bytes_is_parsed():
    decoded = decode_request({"body": json.dumps({"signal": [0.5]}).encode()}, "application/json")
    assert decoded.signals[0].tolist() == [0.5]


@pytest.mark.parametrize("dtype", ["<f4", ">f8", "<i2", "<u1", "<i8"])
def test_npy_any_real_dtype_1d_and_2d(dtype):
    data = (np.arange(12) % 7).astype(dtype)
    assert decode_request({"body": npy_bytes(data)}, "application/x-npy").signals[0].tolist() == data.astype(float).tolist()
    rows = decode_request({"body": npy_bytes(data.reshape(3, 4))}, "application/x-npy").signals
    assert len(rows) == 3 and all(row.size == 4 for row in rows)


def test_csv_rows_of_different_lengths():
    decoded = decode_request({"body": "1,2,3\n4.5, 5\n\n"}, "text/csv")
    assert [s.tolist() for s in decoded.signals] == [[1, 2, 3], [4.5, 5]]


@pytest.mark.parametrize("lines", [60, 3000])
def test_a_column_with_decimal_commas_is_refused_with_the_reason(lines):
    """A European spreadsheet's column (0,1234): read as rows of two whole numbers, 60 lines were
    60 signals of two samples and the pulse was lost; 3,000 were refused as too many signals
    (a stranger's probe). Now either is refused naming the decimal commas."""
    values = np.random.default_rng(lines).normal(scale=0.05, size=lines)
    body = "\n".join(f"{value:.4f}".replace(".", ",") for value in values)
    with pytest.raises(InputError, match="decimal commas") as error:
        decode_request({"body": body}, "text/csv")
    assert error.value.status == 400
    # whole numbers two a line, none written with a leading zero, are still rows
    assert [s.tolist() for s in decode_request({"body": "10,20\n-3,4"}, "text/csv").signals] == [[10, 20], [-3, 4]]
    assert [s.tolist() for s in decode_request({"body": "0,0"}, "text/csv").signals] == [[0, 0]]
    # a fixed-width integer table (two ADC channels) is no decimal column (a review)
    assert [s.tolist() for s in decode_request({"body": "0007,0513\n0012,0498"}, "text/csv").signals] == [
        [7, 513], [12, 498]]
    # one decimal digit, negative values: "-0,5" is no pair of whole numbers either
    with pytest.raises(InputError, match="decimal commas"):
        decode_request({"body": "0,3\n-0,5\n1,2"}, "text/csv")


def test_a_csv_of_one_value_a_line_is_one_signal():
    """A stranger's probe: an instrument's export, one value a line, was read as that many
    signals of one sample (no region anywhere), where the client reads it as one signal."""
    decoded = decode_request({"body": "\ufeff0.5\r\n-1e3,\n 2 \n\n"}, "text/csv")
    assert [s.tolist() for s in decoded.signals] == [[0.5, -1000.0, 2.0]]
    column = "\n".join(str(value) for value in range(1000))  # more lines than signals allowed
    assert [s.size for s in decode_request({"body": column}, "text/csv").signals] == [1000]
    assert [s.tolist() for s in decode_request({"body": "7"}, "text/csv").signals] == [[7.0]]
    with pytest.raises(InputError, match="cells") as error:  # bare carriage returns count as lines
        decode_request({"body": "1\r" * 2_000_000}, "text/csv")
    assert error.value.status == 413
    for body, where in (("1\n2\n\n3", "line 3 is blank inside a column"), ("1\n2\nx", "line 3"),
                        ("1\nnan", "sample 1 is NaN")):
        with pytest.raises(InputError, match=where) as error:
            decode_request({"body": body}, "text/csv")
        assert error.value.status == 400


def oscilloscope_export(samples: np.ndarray, labels: str | None = "Time,Ampl", digits: int = 6) -> str:
    """A capture as an oscilloscope writes it: a time column (here 2.5 ns a sample, from a
    trigger 1 us before) and the values, under a line of labels."""
    times = -1e-6 + 2.5e-9 * np.arange(samples.size)
    lines = [f"{time:.{digits}e},{value:.6g}" for time, value in zip(times, samples)]
    return "\n".join(([labels] if labels else []) + lines) + "\n"


def test_an_oscilloscope_time_value_export_is_one_signal_of_its_values():
    """A stranger's probe: a two-column time,value export was read as rows of two samples, the
    times among them (and more than 256 lines got a 413 about signals)."""
    samples = np.round(np.random.default_rng(3).normal(size=2000), 4)
    for labels in ("Time,Ampl", "s, V", None):
        decoded = decode_request({"body": oscilloscope_export(samples, labels)}, "text/csv")
        assert len(decoded.signals) == 1 and np.array_equal(decoded.signals[0], samples), labels
    # a column under a label, and a label over one value
    assert [s.tolist() for s in decode_request({"body": "Ampl\r\n1\r\n2.5\r\n"}, "text/csv").signals] == [[1.0, 2.5]]
    assert [s.tolist() for s in decode_request({"body": "Ampl\n7"}, "text/csv").signals] == [[7.0]]
    # a few lines of two values stay rows: signals of two samples
    assert len(decode_request({"body": "1,2\n3,4\n5,6"}, "text/csv").signals) == 3


@pytest.mark.parametrize("body, status, words", [
    ("Time,Ampl\n0,1\n1,2\n1,3\n", 400, "time evenly spaced .*too few digits.*sampling_rate_hz"),  # a time repeats
    ("Time,Ampl\n0,1,5\n1,2,6\n", 400, "line of labels"),  # labels over rows
    ("Time,Ampl\n0,1\n1,x\n", 400, "line 3: values must all be numbers"),
    ("Time,Ampl\n0,1\n1,nan\n", 400, "NaN"),
    ("0.0;0.06\n1e-9;0.07\n", 400, "line 1: values must all be numbers .*this line uses ';'"),  # no labels
    ("Time;Ampl\n0,0;0,06\n", 400, "line 2: .*this line uses ';'"),  # a decimal comma
    ("1\t2\t3\n4\t5\t6", 400, "line 1: .*uses a tab"),
    # uneven, more rows than signals allowed: whole numbers, so no rows either (400, not 413)
    ("\n".join(f"{k * k},{k}" for k in range(300)), 400, "first column must rise evenly"),
    ("\n".join(f"{k * k}.5,{k}" for k in range(300)), 413, "first column rises evenly"),
])
def test_a_time_value_export_that_is_not_one_is_refused_clearly(body, status, words):
    with pytest.raises(InputError, match=words) as error:
        decode_request({"body": body}, "text/csv")
    assert error.value.status == status


def test_a_flat_signals_list_and_non_finite_options_get_400s_that_say_what_is_wrong():
    """A stranger's probe: {"signals": [0, ..., 299]} was refused 413 as 300 signals over the
    limit, and a NaN or infinite option was told to be positive."""
    with pytest.raises(InputError, match='one signal goes in "signal"') as error:
        decode_request({"body": {"signals": list(range(300))}}, "application/json")
    assert error.value.status == 400
    for value in (float("nan"), float("inf")):
        with pytest.raises(InputError, match='"sampling_rate_hz" must be a finite number') as error:
            decode_request({"body": {"signal": [1.0] * 10, "sampling_rate_hz": value}}, "application/json")
        assert error.value.status == 400
    from pdseg.decode import parse_options
    with pytest.raises(InputError, match='"threshold" must be a finite number'):  # a multipart field
        parse_options({"threshold": b"Infinity"})


def test_octet_stream_is_little_endian_float32():
    values = np.array([1.5, -2.25, 3e5], dtype="<f4")
    decoded = decode_request({"body": values.tobytes()}, "application/octet-stream")
    assert decoded.signals[0].tolist() == values.astype(float).tolist()


def test_multipart_file_and_option_fields():
    row = {"data": bytearray(npy_bytes(np.ones((2, 5)))), "threshold": b"0.7", "samples_per_cycle": b"100"}
    decoded = decode_request(row, "multipart/form-data; boundary=xyz")
    assert len(decoded.signals) == 2 and decoded.options.threshold == 0.7
    assert decoded.options.period() == 100.0
    csv_upload = decode_request({"data": b"1,2,3"}, "multipart/form-data; boundary=xyz")
    assert csv_upload.signals[0].tolist() == [1, 2, 3]
    # An uploaded JSON file's own options count (they were dropped without a word), beside the fields'.
    json_upload = decode_request({"data": b'{"signal": [1, 2, 3], "threshold": 0.6}', "samples_per_cycle": b"100"},
                                 "multipart/form-data; boundary=xyz")
    assert json_upload.options.threshold == 0.6 and json_upload.options.period() == 100.0
    null_in_file = decode_request({"data": b'{"signal": [1, 2, 3], "threshold": null}', "threshold": b"0.7"},
                                  "multipart/form-data; boundary=xyz")
    assert null_in_file.options.threshold == 0.7


def test_a_spreadsheets_byte_order_mark_is_not_part_of_the_numbers():
    for row, kind in (({"body": "\ufeff1,2,3\n4,5".encode()}, "text/csv"),
                      ({"data": "\ufeff1,2,3\n4,5".encode()}, "multipart/form-data")):
        assert [s.tolist() for s in decode_request(row, kind).signals] == [[1, 2, 3], [4, 5]]


def test_a_derived_period_and_an_identity_encoding_are_accepted():
    decoded = decode_request({"body": {"signal": [1.0, 2.0], "sampling_rate_hz": 150, "power_frequency_hz": 50}},
                             "application/json", content_encoding="identity")
    assert decoded.options.period() == 3.0


@pytest.mark.parametrize("row, content_type, status, words", [
    ({"body": b"{not json"}, "application/json", 400, "malformed JSON"),
    ({"body": {"sig": [1]}}, "application/json", 400, "missing field"),
    ({"body": {"signal": []}}, "application/json", 400, "empty"),
    ({"body": {"signals": []}}, "application/json", 400, "non-empty"),
    ({"body": {"signal": [1, "a"]}}, "application/json", 400, "numbers"),
    ({"body": {"signal": [1, None]}}, "application/json", 400, "sample 1 is null"),
    ({"body": {"signal": [[1, 2]]}}, "application/json", 400, "flat list"),
    ({"body": {"signal": [1, 2], "threshold": 2}}, "application/json", 400, "threshold"),
    ({"body": {"signal": [1, 2], "sampling_rate_hz": "fast"}}, "application/json", 400, "sampling_rate_hz"),
    # as CSV reads numbers (a stranger's probe, 2026-12-06: multipart options took "1_000")
    ({"data": bytearray(b"1,2,3"), "samples_per_cycle": b"1_000"}, "multipart/form-data", 400, "no '_'"),
    ({"data": bytearray(b"1,2,3"), "threshold": "\u0660.5".encode()}, "multipart/form-data", 400, "plain ASCII"),
    ({"body": b"garbage"}, "application/x-npy", 400, "malformed .npy"),
    ({"body": npy_bytes(np.zeros((2, 2, 2)))}, "application/x-npy", 400, "3 dimensions"),
    ({"body": npy_bytes(np.array([1.0, np.inf]))}, "application/x-npy", 400, "sample 1"),
    ({"body": npy_bytes(np.array(["a", "b"]))}, "application/x-npy", 400, "not an integer or floating-point"),
    ({"body": npy_bytes(np.zeros(0))}, "application/x-npy", 400, "empty"),
    ({"body": "1,2\n3,x"}, "text/csv", 400, "row 1"),
    ({"body": "1,nan"}, "text/csv", 400, "NaN"),
    ({"body": b"\x00\x00\x80"}, "application/octet-stream", 400, "float32"),
    ({"body": b"abc"}, "image/png", 415, "unsupported content type"),
    ({"body": b"abc"}, None, 415, "unsupported content type"),
    ({"threshold": b"0.5"}, "multipart/form-data", 400, 'field "data"'),
    # issue #15
    ({"body": b"[" * 10_000 + b"]" * 10_000}, "application/json", 400, "nested 10000 levels"),
    ({"body": b'{"signal": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"}, "application/json", 400, "nested"),
    ({"body": b'{"signal": [true, false, true]}'}, "application/json", 400, "sample 0 is true"),
    ({"body": b'{"signal": ["1.5", "2", "3"]}'}, "application/json", 400, "sample 0 is a string"),
    ({"signal": b"1,2,3"}, "application/x-www-form-urlencoded", 415, "curl -d"),
    ({"body": json.dumps({"signals": [[0.5, 0.5]] * 40_000}).encode()}, "application/json", 413, "40,000 signals"),
    ({"body": json.dumps({"signals": [[0.5]] * 40_000}).encode()}, "application/json", 400, "40,000 signals of one sample"),
    ({"body": b'{"signal": [' + b"7" * 5000 + b"]}"}, "application/json", 400, "malformed JSON"),
    ({"body": b'{"signal": [1' + b"0" * 400 + b"]}"}, "application/json", 400, "float64"),
    ({"body": {"signal": [1.0], "threshold": True}}, "application/json", 400, "threshold"),
    ({"body": npy_bytes(np.zeros(10))[:-8]}, "application/x-npy", 400, "promises"),
    ({"body": npy_bytes(np.array([True, False]))}, "application/x-npy", 400, "not an integer"),
    ({"body": "1_000,2"}, "text/csv", 400, "plain numbers"),
    ({"body": npy_bytes(np.array([1.0, -1e300, 2.0]))}, "application/x-npy", 400, "sample 1 is -1e+300"),
    ({"body": {"signal": [0.0, 1e101]}}, "application/json", 400, "magnitudes above 1e+100"),
    ({"body": npy_bytes(np.array([0.0, 3e-200, -1e-201]))}, "application/x-npy", 400, "under 1e-100"),
    # found by a stranger's probe (2026-12-06): a period of 0 or 1e-308 from the two rates was a 500,
    # one of 2 or 0.83 samples an answer; a rate of 1e-310 Hz put Infinity into the JSON answer
    ({"body": {"signal": [1.0, 2.0], "sampling_rate_hz": 1e-310, "power_frequency_hz": 1}}, "application/json",
     400, "sampling_rate_hz"),
    ({"body": {"signal": [1.0, 2.0], "sampling_rate_hz": 1e-300, "power_frequency_hz": 1e300}}, "application/json",
     400, "sampling_rate_hz"),
    ({"body": {"signal": [1.0, 2.0], "sampling_rate_hz": 100, "power_frequency_hz": 50}}, "application/json",
     400, "gives 2 samples per cycle"),
    ({"body": {"signal": [1.0, 2.0], "sampling_rate_hz": 1, "power_frequency_hz": 1e308}}, "application/json",
     400, "at least 3"),
    ({"body": {"signal": [1.0, 2.0], "sampling_rate_hz": 1e308, "power_frequency_hz": 1e-300}}, "application/json",
     400, "finite"),
    ({"body": b'{"signal": [1, 2]}'}, "application/json", 415, "Content-Encoding"),
    ({"data": b"\x00\x00\x80\xff" * 4}, "multipart/form-data", 400, "application/octet-stream"),
    ({"data": b'{"signal": [1, 2], "threshold": 0.6}', "threshold": b"0.7"}, "multipart/form-data", 400,
     "'threshold' given twice"),
])
def test_bad_input_names_the_problem(row, content_type, status, words):
    encoding = "gzip" if "Content-Encoding" in words else None
    with pytest.raises(InputError) as caught:
        decode_request(row, content_type, content_encoding=encoding)
    assert caught.value.status == status
    assert words in caught.value.message


def test_too_much_work_is_413():
    limits = WorkLimits(max_work=100, max_signals=10, signal_overhead=0, min_window=1)
    with pytest.raises(InputError) as caught:
        decode_request({"body": {"signals": [[0.0] * 60, [0.0] * 50]}}, "application/json", limits)
    assert caught.value.status == 413 and "100" in caught.value.message
    decode_request({"body": {"signal": [0.0] * 100}}, "application/json", limits)


def test_json_over_the_limits_is_refused_before_it_is_parsed(monkeypatch):
    """Bracket and comma counts in the raw body: 600,000 signals are refused without building
    600,000 lists."""
    import pdseg.decode as decode

    def no_parsing(*args, **kwargs):
        raise AssertionError("parsed")

    monkeypatch.setattr(decode.json, "loads", no_parsing)
    for body, words in ((json.dumps({"signals": [[0.5, 0.5]] * 600_000}).encode(), "600,000 signals"),
                        (b'{"signal": [' + b"0," * 2_000_000 + b"0]}", "values")):
        with pytest.raises(InputError) as caught:
            decode_request({"body": body}, "application/json")
        assert caught.value.status == 413 and words in caught.value.message
    with pytest.raises(InputError, match="600,000 signals of one sample each") as caught:  # a column
        decode_request({"body": json.dumps({"signals": [[0.5]] * 600_000}).encode()}, "application/json")
    assert caught.value.status == 400


def test_a_png_answer_costs_more():
    limits = WorkLimits()
    signals = [[0.0] * 100_000] * 8
    decode_request({"body": {"signals": signals}}, "application/json", limits)
    with pytest.raises(InputError) as caught:
        decode_request({"body": {"signals": signals}}, "application/json", limits, picture=True)
    assert caught.value.status == 413 and "PNG" in caught.value.message


def test_unknown_fields_are_refused_with_the_known_ones_named():
    from pdseg.decode import check_fields

    with pytest.raises(InputError) as error:
        decode_request({"body": b'{"signal": [1, 2, 3], "treshold": 0.5}'}, "application/json")
    assert error.value.status == 400 and "'treshold'" in error.value.message
    assert "threshold" in error.value.message.split("known fields are")[1]
    with pytest.raises(InputError, match="'colour'"):
        decode_request({"data": bytearray(npy_bytes(np.ones(8))), "colour": b"red"}, "multipart/form-data")
    check_fields({"signals": [], "threshold": 0.5, "view": "prpd"}, ("signal", "signals"))  # all known
    with pytest.raises(InputError) as long_name:  # a 100,000-character name is not repeated whole
        check_fields({"signal": [], "x" * 100_000: 1}, ("signal", "signals"))
    assert "'" + "x" * 64 + "'... (100,000 characters)" in long_name.value.message
    assert len(long_name.value.message) < 400
    twice = "y" * 100_000
    with pytest.raises(InputError) as repeated:  # nor one given twice (a review's probe)
        decode_request({"body": ('{"signal": [1, 2, 3], "' + twice + '": 1, "' + twice + '": 2}').encode()},
                       "application/json")
    assert "(100,000 characters)" in repeated.value.message and len(repeated.value.message) < 400


@pytest.mark.parametrize("accept, expected", [
    (None, "application/json"), ("*/*", "application/json"), ("application/json", "application/json"),
    ("text/html,application/xhtml+xml,*/*;q=0.8", "application/json"), ("application/*", "application/json"),
    ("image/png", "image/png"), ("application/json, image/png", "image/png"), ("text/csv", 406),
    ("image/jpeg", 406),
    # quality values (RFC 9110): the higher one wins, q=0 refuses a type, a wildcard stands for it
    ("application/json;q=1, image/png;q=0.1", "application/json"), ("image/png;q=0", 406),
    ("image/png;q=0, */*", "application/json"), ("image/*", "image/png"), ("image/*;q=0.5, */*;q=0.4", "image/png"),
    ("application/json;q=0.2, image/png;q=0.9", "image/png"), ("image/png;q=oops", "image/png"), (",,", "application/json"),
    # "nan" reads as a float but is no quality either (a stranger's probe got a 406); "inf" is over 1
    ("image/png;q=nan", "image/png"), ("image/png;q=inf", 406)])
def test_accept_header_chooses_the_answer_or_406(accept, expected):
    from pdseg.decode import answer_type

    if expected == 406:
        with pytest.raises(InputError) as error:
            answer_type(accept)
        assert error.value.status == 406 and "application/json, image/png" in error.value.message
    else:
        assert answer_type(accept) == expected


def test_an_empty_csv_value_is_refused_not_dropped():
    """Dropped, an empty value would move every later sample (and the regions) one place earlier."""
    for body, where in ((b"1,2,,4,5", "value 2"), (b"1,2,3\n4,,6", "row 1: value 1"), (b",1,2", "value 0")):
        with pytest.raises(InputError, match=where) as error:
            decode_request({"body": body}, "text/csv")
        assert error.value.status == 400
    # delimiters after a row's last value (a spreadsheet pads its short rows) move no sample
    trailing = decode_request({"body": b"1,2,3,\n4,5,,\r\n6, ,"}, "text/csv")
    assert [s.tolist() for s in trailing.signals] == [[1.0, 2.0, 3.0], [4.0, 5.0], [6.0]]


def test_a_npy_file_sent_as_octet_stream_is_refused_with_the_right_type_named():
    with pytest.raises(InputError, match="application/x-npy") as error:
        decode_request({"body": npy_bytes(np.ones(10))}, "application/octet-stream")
    assert error.value.status == 400
    raw = decode_request({"body": np.ones(10, dtype="<f4").tobytes()}, "application/octet-stream")
    assert raw.signals[0].tolist() == [1.0] * 10


def test_a_prpd_picture_is_charged_one_panel_not_one_per_signal():
    limits = WorkLimits()
    signals = [[1.0, 2.0, 3.0]] * limits.max_signals
    with pytest.raises(InputError) as error:  # eight signal panels: over the limit
        decode_request({"body": {"signals": signals}}, "application/json", limits, picture=True)
    assert error.value.status == 413
    decoded = decode_request({"body": {"signals": signals, "view": "prpd"}}, "application/json", limits, picture=True)
    assert decoded.work == limits.work([3] * limits.max_signals) + limits.picture_panel_work


def test_period_options_must_be_complete_and_agree():
    signal = [1.0, 2.0, 3.0]
    with pytest.raises(InputError, match="needs \"sampling_rate_hz\""):
        decode_request({"body": {"signal": signal, "power_frequency_hz": 50}}, "application/json")
    with pytest.raises(InputError, match="two periods"):
        decode_request({"body": {"signal": signal, "samples_per_cycle": 1000, "sampling_rate_hz": 40e6,
                                 "power_frequency_hz": 50}}, "application/json")
    agreeing = decode_request({"body": {"signal": signal, "samples_per_cycle": 800_000, "sampling_rate_hz": 40e6,
                                        "power_frequency_hz": 50.2}}, "application/json")
    assert agreeing.options.period() == 800_000
    rate_only = decode_request({"body": {"signal": signal, "sampling_rate_hz": 40e6}}, "application/json")
    assert rate_only.options.period() is None and rate_only.options.sampling_rate_hz == 40e6


def test_a_json_field_given_twice_is_refused():
    for body, field in ((b'{"signal": [1, 2, 3], "signal": [4, 5, 6, 7]}', "'signal'"),
                        (b'{"signal": [1, 2, 3], "threshold": 0.5, "threshold": 0.7}', "'threshold'")):
        with pytest.raises(InputError, match=field) as error:
            decode_request({"body": body}, "application/json")
        assert error.value.status == 400


def test_an_empty_multipart_file_is_named_as_such():
    with pytest.raises(InputError, match='field "data" is empty'):
        decode_request({"data": bytearray()}, "multipart/form-data")


def test_a_multipart_body_the_frontend_could_not_split_is_named_as_such():
    """Found 2026-12-06 by a stranger's probe: TorchServe's frontend splits a multipart body into
    fields only under a lower-case type whose boundary the body uses; otherwise the handler got the
    body whole, or nothing, and said the upload lacked its "data" field."""
    for row in ({"body": bytearray(b"--XX\r\nContent-Disposition: form-data; name=\"data\"\r\n\r\n1,2\r\n--XX--\r\n")}, {}):
        with pytest.raises(InputError, match="could not be split into its fields"):
            decode_request(row, "multipart/form-data; boundary=XX")
    with pytest.raises(InputError, match='needs the signal file in field "data"'):
        decode_request({"threshold": b"0.5"}, "multipart/form-data; boundary=XX")


def test_a_json_list_uploaded_as_a_file_is_read_as_its_signals():
    """A stranger's probe, 2026-12-06: a file holding [[...], [...]] was read as CSV and refused
    with a message about CSV rows. It is read as the list of signals it is, and a bad one is
    named as JSON."""
    upload = decode_request({"data": b' [[1, 2, 3], [4, 5, 6.5]]'}, "multipart/form-data; boundary=xyz")
    assert [signal.tolist() for signal in upload.signals] == [[1, 2, 3], [4, 5, 6.5]]
    with pytest.raises(InputError, match="malformed JSON: .* column 6 "):
        decode_request({"data": b"[[1,2"}, "multipart/form-data; boundary=xyz")
    with pytest.raises(InputError, match="sample 1 is a string"):
        decode_request({"data": b'[[1, "a"]]'}, "multipart/form-data; boundary=xyz")


@pytest.mark.parametrize("given", [" PRPD ", "Prpd", b"PRPD\r\n"])
def test_the_view_option_is_read_whatever_its_case(given):
    """" prpd " was taken and "PRPD" refused (a stranger's probe, 2026-12-06)."""
    decoded = decode_request({"data": b"1,2,3", "view": given if isinstance(given, bytes) else given.encode()},
                             "multipart/form-data; boundary=xyz")
    assert decoded.view == "prpd"
    assert decode_request({"body": {"signal": [1, 2, 3], "view": given if isinstance(given, str) else "PRPD"}},
                          "application/json").view == "prpd"


def test_unknown_fields_beyond_eight_are_counted_not_listed():
    from pdseg.decode import check_fields

    with pytest.raises(InputError) as error:
        check_fields({"signal": []} | {f"field{number}": 1 for number in range(20_000)}, ("signal", "signals"))
    assert "and 19,992 more" in error.value.message and len(error.value.message) < 600


def test_a_csv_row_ends_at_a_line_break_only():
    assert [signal.tolist() for signal in decode_request({"body": b"1,2\r3,4\r\n5,6\n"}, "text/csv").signals] == \
        [[1, 2], [3, 4], [5, 6]]
    for separator in ("\x0c", "\x0b", "\x1c", "\u2028", "\u0085"):
        with pytest.raises(InputError, match="CSV row 0"):
            decode_request({"body": f"1,2,3{separator}4,5,6".encode()}, "text/csv")


@pytest.mark.parametrize("shape", [(-2, -3), (-1, -6), (True,), (3, False)])
def test_a_npy_header_with_sizes_that_are_not_whole_numbers_is_refused(shape):
    from bad_inputs import npy_header

    with pytest.raises(InputError, match="whole number") as error:
        decode_request({"body": npy_header("<f8", shape) + b"\x00" * 48}, "application/x-npy")
    assert error.value.status == 400


def test_json_with_a_byte_order_mark_is_read_and_a_giant_integer_is_named_as_such():
    """A stranger's probe: JSON that a Windows tool wrote with a byte-order mark was refused
    ("Unexpected UTF-8 BOM (decode using utf-8-sig)") where CSV bodies and multipart JSON read
    past it; a 5,000-digit integer got Python's advice to raise sys.set_int_max_str_digits()."""
    body = "\ufeff" + json.dumps({"signal": [1, 2, 3], "threshold": 0.5})
    for payload in (body, body.encode("utf-8")):
        decoded = decode_request({"body": payload}, "application/json")
        assert decoded.signals[0].tolist() == [1.0, 2.0, 3.0] and decoded.options.threshold == 0.5
    with pytest.raises(InputError) as error:
        decode_request({"body": '{"signal": [' + "9" * 5000 + "]}"}, "application/json")
    assert error.value.status == 400 and "more than 4,300 digits" in error.value.message
    assert "sys." not in error.value.message


def test_a_column_is_one_signal_in_npy_and_refused_as_one_sample_signals_in_json():
    """A stranger's probe, 2026-12-08: a capture saved as one column, shape (64, 1) as MATLAB and
    pandas export it, was read as 64 signals of one sample and its spike was lost with a 200.
    As a CSV column is, it is one signal; in JSON, a list of one-sample signals is refused."""
    capture = np.random.default_rng(5).normal(size=64)
    capture[30] += 40.0
    for array in (capture.reshape(-1, 1), np.asfortranarray(capture.reshape(-1, 1)), capture.reshape(1, -1)):
        signals = decode_request({"body": npy_bytes(array)}, "application/x-npy").signals
        assert [s.tolist() for s in signals] == [capture.tolist()]
    assert len(decode_request({"body": npy_bytes(capture.reshape(2, -1))}, "application/x-npy").signals) == 2
    with pytest.raises(InputError, match='one sample each.*"signal"') as error:
        decode_request({"body": {"signals": [[v] for v in capture.tolist()]}}, "application/json")
    assert error.value.status == 400
    assert decode_request({"body": {"signals": [[0.5]]}}, "application/json").signals[0].tolist() == [0.5]


def test_many_lines_of_two_whole_numbers_are_refused_not_read_as_two_sample_signals():
    """A stranger's probe: a column with decimal commas of one digit (11,2 / 12,2 / 10,3, no
    leading zero to tell it by) was read as 60 signals of two samples, a 200 with no region."""
    rng = np.random.default_rng(6)
    body = "\n".join(f"{int(v)},{rng.integers(0, 10)}" for v in rng.normal(12, 2, 60))
    with pytest.raises(InputError, match="two whole numbers.*decimal commas.*time,value") as error:
        decode_request({"body": body}, "text/csv")
    assert error.value.status == 400
    # a few such lines stay rows, and two values with points are rows however many
    assert len(decode_request({"body": "10,20\n-3,4"}, "text/csv").signals) == 2
    assert len(decode_request({"body": "\n".join(f"{k * k}.5,{k % 3}" for k in range(40))}, "text/csv").signals) == 40


def test_an_octet_stream_of_another_sample_type_is_refused_naming_it():
    """A stranger's probe: 2,048 12-bit ADC codes sent as float64 or int16 bodies were read as
    float32 and answered 200 with 4,096 or 1,024 samples and no region."""
    rng = np.random.default_rng(10)
    codes = np.round(rng.normal(0, 3, 2048)) + 2048
    codes[700] += 90
    assert [s.size for s in decode_request({"body": codes.astype("<f4").tobytes()},
                                           "application/octet-stream").signals] == [2048]
    for dtype, words in (("<f8", "every other float32 is exactly zero"), ("<i2", "as integer samples read"),
                         ("<u2", "as integer samples read")):
        with pytest.raises(InputError, match=f"does not read as float32 samples: .*{words}") as error:
            decode_request({"body": codes.astype(dtype).tobytes()}, "application/octet-stream")
        assert error.value.status == 400
    with pytest.raises(InputError, match="NaN or infinite values as float32 but none as float64"):
        decode_request({"body": rng.normal(size=2048).astype("<f8").tobytes()}, "application/octet-stream")
    # a capture's own NaN is named where it is, at an even sample as at an odd one (a review)
    for position in (10, 11):
        noisy = rng.normal(size=2048).astype("<f4")
        noisy[position] = np.nan
        with pytest.raises(InputError, match=f"sample {position} is NaN"):
            decode_request({"body": noisy.tobytes()}, "application/octet-stream")
    # mostly zero with a spike, or tiny values among ordinary ones, are float32 as they are
    spike = np.zeros(64, dtype="<f4")
    spike[31] = 7.0
    tiny = np.full(64, 1e-40, dtype="<f4")
    tiny[::8] = 1.0
    for samples in (spike, tiny):
        decoded = decode_request({"body": samples.tobytes()}, "application/octet-stream")
        assert decoded.signals[0].tolist() == samples.astype(np.float64).tolist()


def test_an_npz_archive_and_json_sent_as_text_or_utf16_are_told_what_they_are():
    """A stranger's probe, 2026-12-08: a .npz was told its magic string was wrong (or, uploaded,
    to send raw float32), a JSON body sent as text/csv that its row 0 held no numbers, and UTF-16
    JSON that a property name lacked its quotes."""
    archive = io.BytesIO()
    np.savez_compressed(archive, capture=np.zeros(16))
    for row, content_type in (({"body": archive.getvalue()}, "application/x-npy"),
                              ({"data": archive.getvalue()}, "multipart/form-data; boundary=x")):
        with pytest.raises(InputError, match=r"\.npz archive.*numpy\.save") as error:
            decode_request(row, content_type)
        assert error.value.status == 400
    for content_type in ("text/csv", "text/plain"):
        with pytest.raises(InputError, match="JSON sent as CSV text.*application/json"):
            decode_request({"body": json.dumps({"signal": [1.0, 2.0]}).encode()}, content_type)
    for encoding in ("utf-16-le", "utf-32-le"):  # with a byte-order mark: "not UTF-8 text" already
        with pytest.raises(InputError, match="NUL bytes.*UTF-8"):
            decode_request({"body": json.dumps({"signal": [1, 2, 3]}).encode(encoding)}, "application/json")
