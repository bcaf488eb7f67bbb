"""Finding identifiers in response bodies and removing the denied ones: the text scanner
(finder → textfind/native, textview, phonescan, readings), the JSON structure (jsonspan, splice,
match, contact), the non-JSON bodies (textbody) and the one straight pipeline over them."""
