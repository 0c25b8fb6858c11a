-- What each group's last install installed (src/capture/install-digest.ts): a digest of the config and
-- table descriptions it installed from. A daemon that finds its own config's digest here starts its workers
-- beside the install instead of after it: the install then registers nothing the workers read.
-- Written by the install; removed by whatever changes the registry outside it (uninstall --table, a
-- group's targets claimed by another group), so that a digest found here is the registry's state.
create table {{schema}}.group_install (
  group_name text primary key,
  digest text not null,
  installed_at timestamptz not null default now()
);
