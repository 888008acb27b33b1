# embed.cmake: cmake -DIN=file -DOUT=file.c -DSYMBOL=name -P embed.cmake
# Writes OUT with `const char SYMBOL[]` (the bytes of IN, NUL-terminated) and `SYMBOL_len`, so a
# program carries a source file (the CRD) without a second copy in the tree.
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR bytes "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" body "${body}")
file(WRITE "${OUT}.tmp" "/* Generated from ${IN} by cli/embed.cmake; do not edit. */\n#include <stddef.h>\nconst char ${SYMBOL}[] = {\n${body}0x00};\nconst size_t ${SYMBOL}_len = ${bytes};\n")
file(RENAME "${OUT}.tmp" "${OUT}")
