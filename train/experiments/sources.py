"""The files --mode results reads and writes, checked: a damaged source is one UserError naming the
file (and line), never a traceback; the page's folder is tried before any work."""
import csv
import io
from pathlib import Path

from common.errors import UserError
from common.io import check_writable_dir, read_text


def read_csv_rows(path, header):
    """The rows of a results CSV as dicts (rows with every field blank left out). A missing column,
    text that is not UTF-8, a NUL byte, a row the csv module cannot read, or a row with more or
    fewer fields than the header is a UserError naming the file and line."""
    path = Path(path)
    text = read_text(path, "results file")
    if "\0" in text:   # what a crash leaves in a file cut short or overwritten with zeros
        raise UserError(f"{path}: line {text.count(chr(10), 0, text.index(chr(0))) + 1}: a NUL byte (a damaged "
                        f"file: cut short or overwritten?)")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = []
    try:
        missing = [k for k in header if k not in (reader.fieldnames or [])]
        if missing:
            raise UserError(f"{path}: missing column(s) {', '.join(missing)} (expected {','.join(header)})")
        width = len(reader.fieldnames)
        for row in reader:
            if None in row or any(value is None for value in row.values()):
                fields = width + len(row.get(None) or ()) - sum(value is None for value in row.values())
                raise UserError(f"{path}: line {reader.line_num}: {fields} fields, the header has {width} "
                                f"(a damaged row, or a comma inside an unquoted field?)")
            if any(value.strip() for value in row.values()):
                rows.append(row)
    except csv.Error as err:
        raise UserError(f"{path}: line {reader.line_num}: not a CSV row ({err})") from None
    return rows


def read_markdown(path):
    """The text of a results/*.md file; not UTF-8 (or unreadable) is a UserError naming it."""
    return read_text(path, "results file")


def check_page_output(out, option="--out"):
    """The page's file `out` can be written: its folder is (or can be made) writable, and `out` is
    not a folder; else a UserError naming the option, before the page is rendered."""
    out = Path(out)
    if out.is_dir():
        raise UserError(f"{option} {out}: is a folder; name the page's file (e.g. {out / 'RESULTS.md'})")
    check_writable_dir(out.parent, option)
    return out
