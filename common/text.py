"""Checks on text read from a user: strings every output (a UTF-8 file, a terminal, an HTTP answer)
can hold."""
from .errors import UserError


def check_unicode(value, what, command_line=False):
    """A UserError naming `what` unless `value` can be written out again: JSON's \\ud800 escapes
    decode to lone surrogates, which no UTF-8 output can hold; on the command line (`command_line`),
    Python keeps a byte that is not UTF-8 as such a surrogate, and the error names the byte."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        char = value[err.start]
        if command_line and "\udc80" <= char <= "\udcff":   # an undecodable byte (surrogateescape)
            raise UserError(f"{what} is not valid UTF-8 (the byte 0x{ord(char) - 0xdc00:02x} at character "
                            f"{err.start})") from None
        raise UserError(f"{what} is not valid Unicode (a lone surrogate, {char!r}, at character "
                        f"{err.start})") from None
