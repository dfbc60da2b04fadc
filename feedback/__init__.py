"""rltab.feedback: the SQLite ledger of suggestions and their outcomes, and the rewards."""
