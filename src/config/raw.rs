//! Reading `config.ini` into raw strings, escapes off.
