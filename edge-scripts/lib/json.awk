# Flattens a JSON document into lines "path<TAB>value": object keys and array indexes joined by
# dots (files.0.sha256), strings unescaped (\uXXXX kept as written), numbers, true, false and null
# as written. Empty objects and arrays print nothing. Enough for manifest.json and API answers;
# POSIX awk (busybox, mawk, gawk).
{ buf = buf $0 "\n" }
END {
  n = length(buf); i = 1; depth = 0
  while (i <= n) {
    c = substr(buf, i, 1)
    if (c == "{" || c == "[") { depth++; type[depth] = c; idx[depth] = 0; key[depth] = ""; wantkey[depth] = (c == "{"); i++; continue }
    if (c == "}" || c == "]") { depth--; i++; continue }
    if (c == ",") { if (type[depth] == "[") idx[depth]++; else wantkey[depth] = 1; i++; continue }
    if (c == ":") { wantkey[depth] = 0; i++; continue }
    if (c == "\"") { s = readstring(); if (type[depth] == "{" && wantkey[depth]) key[depth] = s; else emit(s); continue }
    if (c == " " || c == "\t" || c == "\r" || c == "\n") { i++; continue }
    j = i
    while (j <= n) { d = substr(buf, j, 1); if (d == "," || d == "}" || d == "]" || d == " " || d == "\t" || d == "\r" || d == "\n") break; j++ }
    emit(substr(buf, i, j - i)); i = j
  }
}
function readstring(   s, ch, nx) {
  i++; s = ""
  while (i <= n) {
    ch = substr(buf, i, 1)
    if (ch == "\\") {
      nx = substr(buf, i + 1, 1)
      if (nx == "n") s = s "\n"; else if (nx == "t") s = s "\t"; else if (nx == "r") s = s "\r"
      else if (nx == "u") s = s "\\u"; else if (nx == "b" || nx == "f") s = s; else s = s nx
      i += 2; continue
    }
    if (ch == "\"") { i++; return s }
    s = s ch; i++
  }
  return s
}
function emit(v,   p, d, seg) {
  p = ""
  for (d = 1; d <= depth; d++) { seg = (type[d] == "{") ? key[d] : idx[d]; p = (p == "") ? seg : p "." seg }
  print p "\t" v
}
