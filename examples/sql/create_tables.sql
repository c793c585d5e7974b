-- Source table of the quick start: raw events with a timestamp and an amount.
CREATE TABLE IF NOT EXISTS events (
    id         INTEGER PRIMARY KEY,
    event_time TEXT    NOT NULL,
    customer   TEXT    NOT NULL,
    amount     REAL    NOT NULL
);
CREATE TABLE IF NOT EXISTS daily_summary (
    base_dt   TEXT    NOT NULL,
    customer  TEXT    NOT NULL,
    n_events  INTEGER NOT NULL,
    total     REAL    NOT NULL,
    PRIMARY KEY (base_dt, customer)
);
INSERT OR IGNORE INTO events (id, event_time, customer, amount) VALUES
    (1, '2025-01-06T09:10:00', 'kim',  12.5),
    (2, '2025-01-07T10:00:00', 'kim',  20.0),
    (3, '2025-01-07T11:30:00', 'lee',   7.25),
    (4, '2025-01-08T08:45:00', 'kim',   3.0),
    (5, '2025-01-08T09:00:00', 'park', 40.0),
    (6, '2025-01-08T23:59:59', 'park',  2.0);
