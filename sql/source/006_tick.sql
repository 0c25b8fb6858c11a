-- Written by every tick (src/changelog/window.ts), so that the transaction drawing the tick's xid writes WAL:
-- PostgreSQL commits a transaction that has an xid but wrote no WAL without flushing it, and after a
-- crash of the source before the next flush that xid could be handed out again, to a writer whose
-- changes a stored snapshot would then take as seen. A sequence: setval() is WAL-logged every time,
-- leaves no dead rows and takes no row lock.
create sequence {{schema}}.tick_flush as bigint;
