// GBNF text (llama.cpp's grammar format, its grammars/README.md) -> the checked rules of grammar.h.
//
//     root ::= ("- " item)+          # the whole output; a rule per line
//     item ::= [^\n]+ "\n"            # classes [a-z] [^...], literals "...", any character .
//
// As llama.cpp reads it: rule names of letters, digits, '-' (and '_'); literals and classes with
// the escapes \n \r \t \\ \" \[ \] \- \xHH \uHHHH \UHHHHHHHH; `.`; groups ( ... ); alternatives |;
// the repetitions * + ? {m} {m,} {m,n} {,n}; # comments. A newline ends a rule, except inside a
// group or after `|`. Token references (<[id]>, <token>, !<...>) are refused, and so is left
// recursion (a rule that can come back to itself before any character, as `x*` of an x that can
// be empty), which would expand forever (llama.cpp refuses the direct kind). Groups nest at most
// 1000 deep. A repetition may repeat again: "a"+? is ("a"+)?.
//
// Repetitions become rules of their own as llama.cpp makes them: x* is `r ::= x r |`, x{0,n} the
// nested (x (x ...)?)?, so that parse stacks stay short.
#pragma once
#include <memory>
#include <string>

#include "engine/grammar.h"

namespace llmasos {

// Throws InvalidArgumentError saying where (line and column, in characters) and why for text that
// is not a usable grammar (not UTF-8, a syntax error, an undefined or twice-defined rule, no
// `root`, left recursion, a root that derives no finite text, too large).
std::shared_ptr<const Grammar> parse_gbnf(const std::string& text);

}  // namespace llmasos
