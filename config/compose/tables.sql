create table public.orders (
  id bigint primary key,
  customer text not null,
  total numeric(12, 2) not null,
  status text not null default 'new',
  created_at timestamptz not null default now()
);
create table public."Order Lines" (
  order_id bigint not null,
  line int not null,
  sku text not null,
  qty int not null,
  primary key (order_id, line)
);
