"""The decision log and everything kept with it: tables, the store, the background writer, migrations."""
