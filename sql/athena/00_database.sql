-- The database the tables live in. `lakehouse catalog sync` does this (and the three
-- tables below) for you; these files are for who prefers SQL to the CLI.
CREATE DATABASE IF NOT EXISTS events;
