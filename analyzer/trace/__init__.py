"""`needle trace`: one packet followed through a snapshot, hop by hop (walk.py), from
and to the endpoints FROM and TO name (endpoints.py), routed as Linux does
(routing.py), reported as `needle.trace/v1` or as text (document.py)."""
