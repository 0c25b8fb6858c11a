-- Runs after tables.sql on the targets: the archive target's mapped table.
create schema archive;
create table archive.orders (id bigint primary key, total numeric(12, 2), status text);
