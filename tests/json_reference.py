"""A reference for JSON mode's automaton, written independently of it: a recursive-descent reader of
one JSON object (RFC 8259) with the automaton's documented limits (at most 48 whitespace bytes in a
row, 20 integer and 20 fraction digits, 2 exponent digits, nesting 64 deep, UTF-16 surrogate
escapes only in pairs), that also tells a valid prefix from an error. classify(data) -> "complete", "prefix" or "bad"."""

WS = b" \t\n\r"
HEX = b"0123456789abcdefABCDEF"
DIGITS = b"0123456789"
LITERALS = {ord("t"): b"true", ord("f"): b"false", ord("n"): b"null"}
# UTF-8 lead byte -> allowed ranges of its continuation bytes (RFC 3629, no surrogates).
UTF8 = {**{c: [(0x80, 0xBF)] for c in range(0xC2, 0xE0)}, 0xE0: [(0xA0, 0xBF), (0x80, 0xBF)],
        **{c: [(0x80, 0xBF)] * 2 for c in list(range(0xE1, 0xED)) + [0xEE, 0xEF]},
        0xED: [(0x80, 0x9F), (0x80, 0xBF)], 0xF0: [(0x90, 0xBF), (0x80, 0xBF), (0x80, 0xBF)],
        **{c: [(0x80, 0xBF)] * 3 for c in range(0xF1, 0xF4)}, 0xF4: [(0x80, 0x8F), (0x80, 0xBF), (0x80, 0xBF)]}


class _End(Exception):
    """The input stopped where more could follow."""


class _Bad(Exception):
    pass


class _Reader:
    def __init__(self, data: bytes):
        self.b, self.i = data, 0

    def peek(self):
        if self.i >= len(self.b):
            raise _End
        return self.b[self.i]

    def take(self):
        c = self.peek()
        self.i += 1
        return c

    def expect(self, ok):
        if not ok:
            raise _Bad

    def ws(self):
        run = 0
        while self.i < len(self.b) and self.b[self.i] in WS:
            run += 1
            self.i += 1
            self.expect(run <= 48)

    def document(self):
        self.ws()
        self.expect(self.take() == ord("{"))
        self.members(1)
        self.expect(self.i == len(self.b))  # nothing after the object

    def members(self, depth):
        self.ws()
        if self.peek() == ord("}"):
            self.i += 1
            return
        while True:
            self.ws()
            self.expect(self.take() == ord('"'))
            self.string()
            self.ws()
            self.expect(self.take() == ord(":"))
            self.value(depth)
            self.ws()
            c = self.take()
            if c == ord("}"):
                return
            self.expect(c == ord(","))

    def elements(self, depth):
        self.ws()
        if self.peek() == ord("]"):
            self.i += 1
            return
        while True:
            self.value(depth)
            self.ws()
            c = self.take()
            if c == ord("]"):
                return
            self.expect(c == ord(","))

    def value(self, depth):
        self.ws()
        c = self.take()
        if c in (ord("{"), ord("[")):
            self.expect(depth < 64)
            (self.members if c == ord("{") else self.elements)(depth + 1)
        elif c == ord('"'):
            self.string()
        elif c in LITERALS:
            for want in LITERALS[c][1:]:
                self.expect(self.take() == want)
        elif c == ord("-") or c in DIGITS:
            self.i -= 1
            self.number()
        else:
            raise _Bad

    def digits(self, cap):
        """Counts a run of digits; the input ending inside it may still go on."""
        n = 0
        while True:
            if self.i >= len(self.b):
                raise _End
            if self.b[self.i] not in DIGITS:
                return n
            n += 1
            self.expect(n <= cap)
            self.i += 1

    def number(self):
        if self.peek() == ord("-"):
            self.i += 1
        c = self.take()
        self.expect(c in DIGITS)
        if c != ord("0"):
            self.digits(19)  # the first digit was taken
        if self.peek() == ord("."):
            self.i += 1
            self.expect(self.digits(20) > 0)
        if self.peek() in b"eE":
            self.i += 1
            if self.peek() in b"+-":
                self.i += 1
            self.expect(self.digits(2) > 0)

    def string(self):
        while True:
            c = self.take()
            if c == ord('"'):
                return
            if c == ord("\\"):
                e = self.take()
                if e == ord("u"):
                    self.code_unit(False)
                else:
                    self.expect(e in b'"\\/bfnrt')
            elif c >= 0x80:
                self.expect(c in UTF8)
                for lo, hi in UTF8[c]:
                    self.expect(lo <= self.take() <= hi)
            else:
                self.expect(c >= 0x20)


    def code_unit(self, low):
        """The 4 hex digits of a \\u escape: a low surrogate only where `low` asks for one (and
        nothing else there), a high one followed by a low one's escape. Bad at the first digit
        that no allowed value begins with."""
        ok = [(0xDC00, 0xDFFF)] if low else [(0, 0xDBFF), (0xE000, 0xFFFF)]
        v = 0
        for k in range(1, 5):
            c = self.take()
            self.expect(c in HEX)
            v = 16 * v + int(chr(c), 16)
            first, last = v << 4 * (4 - k), ((v + 1) << 4 * (4 - k)) - 1  # the values it may become
            self.expect(any(a <= last and first <= b for a, b in ok))
        if 0xD800 <= v <= 0xDBFF:
            self.expect(self.take() == ord("\\"))
            self.expect(self.take() == ord("u"))
            self.code_unit(True)


def two_digit_exponent(x: float) -> bool:
    """Whether json.dumps writes float x within the automaton's 2 exponent digits."""
    return x == 0 or 1e-99 <= abs(x) < 1e99


def classify(data: bytes) -> str:
    try:
        _Reader(data).document()
        return "complete"
    except _End:
        return "prefix"
    except _Bad:
        return "bad"
