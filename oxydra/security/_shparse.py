"""A small POSIX-shell parser that finds every simple command a command line would run.

It is not a shell: it understands enough of the grammar to list the words of each simple
command, including those inside `$(...)`, backticks, `<(...)`/`>(...)` and subshells,
and to say which operators and redirects appear. Anything it cannot be sure about is a
`ShellSyntaxError` (the policy then refuses the command): unterminated quotes, here-docs,
`case`, function definitions, `${...}` holding a command substitution.

A `Word` is `dynamic` when its text is only known at run time (an unquoted `$var`,
`${...}`, `$(...)`, a backtick, `$'...'`, a glob or a brace expansion).
"""

from __future__ import annotations

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


_OPERATORS = (
    "&>>", ";;&", "<<<", "<<-", "&&", "||", ";;", ";&", "|&", ">>", "<<", "<&", ">&", "<>",
    ">|", "&>", "&", "|", ";", "<", ">", "(", ")",
)  # fmt: skip
_REDIRECTS = frozenset({"&>>", "<<<", ">>", "<&", ">&", "<>", ">|", "&>", "<", ">"})
_METACHARS = set(" \t\n;&|<>()")
_SPECIAL_PARAMS = set("?$!#@*-0123456789")
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
                if char in "*?[" or (char == "{" and "," in self._brace_body()):
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
            body = self._balanced_braces()
            if "$(" in body or "`" in body:
                raise ShellSyntaxError("command substitution inside ${...} is not supported")
        elif rest.startswith("'"):
            self.i += 1
            self._ansi_c_string()
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
        if "$(" in body or "`" in body:
            raise ShellSyntaxError("command substitution inside $((...)) is not supported")
        self.i = end + 2
        word.dynamic = True
        return ""

    def _balanced_braces(self) -> str:
        depth, start = 0, self.i
        while self.i < len(self.s):
            char = self.s[self.i]
            self.i += 1
            depth += {"{": 1, "}": -1}.get(char, 0)
            if depth == 0:
                return self.s[start + 1 : self.i - 1]
        raise ShellSyntaxError("unterminated ${")

    def _ansi_c_string(self) -> None:
        while self.i < len(self.s):
            char = self.s[self.i]
            self.i += 2 if char == "\\" else 1
            if char == "'":
                return
        raise ShellSyntaxError("unterminated $' quote")
