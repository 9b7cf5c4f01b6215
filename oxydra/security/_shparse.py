"""A small POSIX-shell parser that finds every simple command a command line would run.

It is not a shell: it understands enough of the grammar to list the words of each simple
command, including those inside `$(...)`, backticks, `<(...)`/`>(...)` and subshells,
and to say which operators and redirects appear. Anything it cannot be sure about is a
`ShellSyntaxError` (the policy then refuses the command): unterminated quotes, here-docs,
`case`, function definitions, `${...}` holding a command substitution.

A `Word` is `dynamic` when its text is only known at run time (an unquoted `$var`,
`${...}`, `$(...)`, a backtick, `$'...'`, `$"..."`, a glob or a brace expansion).

Where dash and bash read the same text differently, or where bash runs code found in data,
the parser refuses rather than pick one reading:
- `&>` and `&>>` (bash: redirect both streams; dash: `&` then a redirect, so `true &>x CMD`
  runs CMD in dash only) and `|&` (bash only);
- `${...}` other than a plain parameter with a plain default/pattern word: quotes inside the
  braces (`${x:-'{'}` hid `; CMD;` from a brace counter), nesting, indirection `${!x}`,
  arrays, substrings and `@` transformations (bash evaluates subscripts and offsets as
  arithmetic, and arithmetic on a variable holding `a[$(CMD)]` runs CMD);
- `$((...))` on anything but numbers, for the same reason.
Parameters assigned by `${NAME=...}`/`${NAME:=...}` are listed in `Parsed.assigned`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


class ShellSyntaxError(ValueError):
    """The command line cannot be parsed with confidence."""


@dataclass
class Word:
    """One word of a simple command, quotes removed."""

    text: str = ""
    dynamic: bool = False


@dataclass
class Parsed:
    """Every simple command found, and the operators used anywhere."""

    commands: list[list[Word]] = field(default_factory=list)
    operators: set[str] = field(default_factory=set)
    assigned: set[str] = field(default_factory=set)


_OPERATORS = (
    "&>>", ";;&", "<<<", "<<-", "&&", "||", ";;", ";&", "|&", ">>", "<<", "<&", ">&", "<>",
    ">|", "&>", "&", "|", ";", "<", ">", "(", ")",
)  # fmt: skip
_REDIRECTS = frozenset({"&>>", "<<<", ">>", "<&", ">&", "<>", ">|", "&>", "<", ">"})
_METACHARS = set(" \t\n;&|<>()")
_SPECIAL_PARAMS = set("?$!#@*-0123456789")
_SHELL_DEPENDENT = {
    "&>": "'&>' means a redirect in bash but '&' then a redirect in sh; write '>file 2>&1'",
    "&>>": "'&>>' means a redirect in bash but '&' then a redirect in sh; write '>>file 2>&1'",
    "|&": "'|&' is bash-only; write '2>&1 |'",
}
# `${NAME}`, `${#NAME}`, `${NAME<op>WORD}` with a WORD free of quotes, escapes, braces and
# substitutions (only `$NAME` references inside).
_PLAIN_WORD = r"[^'\"\\`${}]*+(?:\$[A-Za-z_][A-Za-z0-9_]*+[^'\"\\`${}]*+)*+"
_PARAMETER = re.compile(
    r"(?P<length>#)?(?P<name>[A-Za-z_][A-Za-z0-9_]*+|[0-9]++|[@*#?$!-])"
    r"(?:(?P<op>:?[-=?+]|##?|%%?|//?|\^\^?|,,?)" + _PLAIN_WORD + r")?"
)
_NUMERIC_ARITHMETIC = re.compile(r"[0-9\s+*/%()<>=!&|^~?:,-]*+")
MAX_DEPTH = 16


def parse(source: str) -> Parsed:
    """Parse a command line; raises ShellSyntaxError when unsure."""
    if "\x00" in source:
        raise ShellSyntaxError("the command contains a NUL byte")
    lexer = _Lexer(source)
    lexer.command_list(end=None, depth=0)
    return lexer.result


class _Lexer:
    def __init__(self, source: str) -> None:
        self.s = source
        self.i = 0
        self.result = Parsed()

    # -- command lists -------------------------------------------------------------------

    def command_list(self, end: str | None, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise ShellSyntaxError("substitutions are nested too deeply")
        words: list[Word] = []
        parens = 0
        redirect_target = False
        while True:
            self._skip_blanks()
            if self.i >= len(self.s):
                if end is not None or parens:
                    raise ShellSyntaxError(f"missing closing {end or ')'}")
                self._close(words)
                return
            char = self.s[self.i]
            if end == "`" and char == "`":
                self.i += 1
                self._close(words)
                return
            if char == "#":
                self._skip_comment()
                continue
            if char == "\n":
                self.i += 1
                self.result.operators.add("\\n")
                words = self._close(words)
                continue
            if self.s.startswith(("<(", ">("), self.i):
                self.result.operators.add(self.s[self.i : self.i + 2])
                self.i += 2
                self.command_list(end=")", depth=depth + 1)
                words.append(Word(dynamic=True))
                continue
            op = self._operator()
            if op is None:
                word = self._word(end, depth)
                if redirect_target:
                    redirect_target = False
                elif not (word.text.isdigit() and self.s.startswith(("<", ">"), self.i)):
                    words.append(word)
                continue
            if op in _SHELL_DEPENDENT:
                raise ShellSyntaxError(_SHELL_DEPENDENT[op])
            self.result.operators.add(op)
            if op == ")":
                if parens == 0:
                    if end == ")":
                        self._close(words)
                        return
                    raise ShellSyntaxError("unbalanced ')'")
                parens -= 1
            elif op == "(":
                if words:
                    raise ShellSyntaxError("function definitions are not supported")
                parens += 1
            elif op in ("<<", "<<-"):
                raise ShellSyntaxError("here-documents are not supported; write a file first")
            elif op in (";;", ";&", ";;&"):
                raise ShellSyntaxError("'case' statements are not supported")
            if op in _REDIRECTS:
                redirect_target = True
            else:
                words = self._close(words)

    def _close(self, words: list[Word]) -> list[Word]:
        if words:
            self.result.commands.append(words)
        return []

    def _operator(self) -> str | None:
        for op in _OPERATORS:
            if self.s.startswith(op, self.i):
                self.i += len(op)
                return op
        return None

    def _skip_blanks(self) -> None:
        while self.i < len(self.s):
            if self.s[self.i] in " \t":
                self.i += 1
            elif self.s.startswith("\\\n", self.i):
                self.i += 2
            else:
                return

    def _skip_comment(self) -> None:
        end = self.s.find("\n", self.i)
        self.i = len(self.s) if end < 0 else end

    # -- words -----------------------------------------------------------------------------

    def _word(self, end: str | None, depth: int) -> Word:
        word = Word()
        parts: list[str] = []
        while self.i < len(self.s):
            char = self.s[self.i]
            if char in _METACHARS or (end == "`" and char == "`"):
                break
            self.i += 1
            if char == "\\":
                parts.append(self._escaped())
            elif char == "'":
                parts.append(self._until("'"))
            elif char == '"':
                parts.append(self._double_quoted(word, depth))
            elif char == "$":
                parts.append(self._dollar(word, depth))
            elif char == "`":
                self.result.operators.add("`")
                self.command_list(end="`", depth=depth + 1)
                word.dynamic = True
            else:
                if char in "*?" or (char == "[" and "]" in self._rest_of_word()):
                    word.dynamic = True
                if char == "{" and "," in self._brace_body():
                    word.dynamic = True
                parts.append(char)
        word.text = "".join(parts)
        return word

    def _escaped(self) -> str:
        if self.i >= len(self.s):
            return ""
        char = self.s[self.i]
        self.i += 1
        return "" if char == "\n" else char

    def _until(self, quote: str) -> str:
        end = self.s.find(quote, self.i)
        if end < 0:
            raise ShellSyntaxError(f"unterminated {quote} quote")
        text = self.s[self.i : end]
        self.i = end + 1
        return text

    def _rest_of_word(self) -> str:
        end = self.i
        while end < len(self.s) and self.s[end] not in _METACHARS:
            end += 1
        return self.s[self.i : end]

    def _brace_body(self) -> str:
        end = self.s.find("}", self.i)
        return self.s[self.i : end] if end >= 0 else ""

    def _double_quoted(self, word: Word, depth: int) -> str:
        parts: list[str] = []
        while self.i < len(self.s):
            char = self.s[self.i]
            self.i += 1
            if char == '"':
                return "".join(parts)
            if char == "\\" and self.i < len(self.s) and self.s[self.i] in '$`"\\\n':
                parts.append(self._escaped())
            elif char == "$":
                parts.append(self._dollar(word, depth))
            elif char == "`":
                self.result.operators.add("`")
                self.command_list(end="`", depth=depth + 1)
                word.dynamic = True
            else:
                parts.append(char)
        raise ShellSyntaxError('unterminated " quote')

    def _dollar(self, word: Word, depth: int) -> str:
        rest = self.s[self.i :]
        if rest.startswith("(("):
            return self._arithmetic(word)
        if rest.startswith("("):
            self.i += 1
            self.result.operators.add("$(")
            self.command_list(end=")", depth=depth + 1)
        elif rest.startswith("{"):
            self._braced_parameter()
        elif rest.startswith("'"):
            self.i += 1
            self._ansi_c_string()
        elif rest.startswith('"'):
            pass  # bash's $"..." (translated): the quoted text follows, marked dynamic
        elif rest[:1] and (rest[0].isalnum() or rest[0] == "_"):
            while self.i < len(self.s) and (self.s[self.i].isalnum() or self.s[self.i] == "_"):
                self.i += 1
        elif rest[:1] and rest[0] in _SPECIAL_PARAMS:
            self.i += 1
        else:
            return "$"
        word.dynamic = True
        return ""

    def _arithmetic(self, word: Word) -> str:
        end = self.s.find("))", self.i)
        if end < 0:
            raise ShellSyntaxError("unterminated $((")
        body = self.s[self.i + 2 : end]
        if not _NUMERIC_ARITHMETIC.fullmatch(body):
            raise ShellSyntaxError(
                "$((...)) on variables is not supported (bash evaluates their values as code)"
            )
        self.i = end + 2
        word.dynamic = True
        return ""

    def _braced_parameter(self) -> None:
        end = self.s.find("}", self.i)
        if end < 0:
            raise ShellSyntaxError("unterminated ${")
        body = self.s[self.i + 1 : end]
        match = _PARAMETER.fullmatch(body)
        if match is None:
            raise ShellSyntaxError(
                f"${{{body[:40]}}} is not a plain parameter expansion (quotes, nesting, "
                "substitutions, arrays, substrings and indirection are not supported)"
            )
        if match.group("op") in ("=", ":="):
            self.result.assigned.add(match.group("name"))
        self.i = end + 1

    def _ansi_c_string(self) -> None:
        while self.i < len(self.s):
            char = self.s[self.i]
            self.i += 2 if char == "\\" else 1
            if char == "'":
                return
        raise ShellSyntaxError("unterminated $' quote")
