-- The hot store's tables, in the schema ORDERBOOK_DB_SCHEMA (default "orderbook").
-- Applied at every start of the store; each statement is a no-op when its object exists.

-- One row per clean tick. (symbol, seq) identifies a tick, so a tick that reaches the store twice
-- (the quality gate delivers at least once) is written once: INSERT ... ON CONFLICT DO NOTHING.
CREATE TABLE IF NOT EXISTS ticks (
    symbol           text             NOT NULL,
    seq              bigint           NOT NULL CHECK (seq >= 0),
    bid              double precision NOT NULL CHECK (bid > 0),
    ask              double precision NOT NULL CHECK (ask > bid),
    bid_size         double precision NOT NULL CHECK (bid_size > 0),
    ask_size         double precision NOT NULL CHECK (ask_size > 0),
    event_time       timestamptz      NOT NULL,
    publish_time     timestamptz,
    -- Where the store read it: the clean topic's partition and offset.
    source_topic     text             NOT NULL,
    source_partition integer          NOT NULL,
    source_offset    bigint           NOT NULL,
    stored_at        timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, seq)
);

-- Candles and "ticks between two times" read one symbol's ticks in time order.
CREATE INDEX IF NOT EXISTS ticks_by_symbol_and_time ON ticks (symbol, event_time);

-- The next offset to read, per consumer group and partition, written in the same transaction as
-- the ticks it covers: after any crash, the rows and the offsets agree. On (re)assignment the
-- store seeks to these offsets, not to the ones Kafka keeps for the group.
CREATE TABLE IF NOT EXISTS consumer_offsets (
    group_id    text        NOT NULL,
    topic       text        NOT NULL,
    partition   integer     NOT NULL CHECK (partition >= 0),
    next_offset bigint      NOT NULL CHECK (next_offset >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, partition)
);

-- One row per streamed candle: a closed window of the candles service (python -m
-- orderbook_kit.candles), stored by `python -m orderbook_kit.store candles`. (symbol, seconds,
-- bucket) identifies it, so a candle read twice is written once (ON CONFLICT DO NOTHING).
CREATE TABLE IF NOT EXISTS candles (
    symbol           text             NOT NULL,
    seconds          integer          NOT NULL CHECK (seconds > 0),
    bucket           timestamptz      NOT NULL,
    open             double precision NOT NULL,
    high             double precision NOT NULL,
    low              double precision NOT NULL,
    close            double precision NOT NULL,
    ticks            integer          NOT NULL CHECK (ticks > 0),
    first_seq        bigint           NOT NULL,
    last_seq         bigint           NOT NULL,
    source_topic     text             NOT NULL,
    source_partition integer          NOT NULL,
    source_offset    bigint           NOT NULL,
    stored_at        timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, seconds, bucket)
);
