"""placeholder"""

TABLE = {"records": 0, "entries": []}
