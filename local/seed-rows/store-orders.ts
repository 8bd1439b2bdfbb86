/**
 * Order lines of an office-supplies store, shaped like Tableau's "Superstore" sample orders (the
 * real head of it is test/fixtures/files/superstore-orders-head.csv): its 21 columns under
 * lower-case names (`Sub-Category` is `sub_category`, `Country/Region` is `country_region`), one
 * line per row, product and customer names with commas and double quotes, as the file would hold
 * them (every value text). Two differences from the sample, both because the pipeline reads
 * timestamps in ISO 8601 only: `order_date` and `ship_date` are `2026-01-03T00:00:00`, not
 * `03/01/19`; and there is no byte-order mark (the reader accepts one; the header names would not
 * change).
 */
import { between, pad, pick, pickWeighted, recordRandom } from './seed-random';

/** The Superstore header, lower-cased into identifiers, in its order. */
export const ORDER_COLUMNS = [
  'row_id', 'order_id', 'order_date', 'ship_date', 'ship_mode', 'customer_id', 'customer_name', 'segment',
  'country_region', 'city', 'state_province', 'postal_code', 'region', 'product_id', 'category',
  'sub_category', 'product_name', 'sales', 'quantity', 'discount', 'profit',
] as const;

/** Order lines per day: later lines (a publisher's inserts) are later orders. */
export const LINES_PER_DAY = 20;
const FIRST_DAY = Date.UTC(2026, 0, 1);

/** Products: names with commas, inch marks and quoted words, the way catalog names are written. */
const PRODUCTS = [
  { id: 'OFF-PA-10000174', category: 'Office Supplies', sub: 'Paper', name: 'Copy Paper, 8 1/2" x 11", 20 lb, 5,000 Sheets', price: 41.9 },
  { id: 'OFF-EN-10001219', category: 'Office Supplies', sub: 'Envelopes', name: 'Envelopes, #10, 4 1/8" x 9 1/2", White, 500/Box', price: 24.5 },
  { id: 'OFF-FA-10000304', category: 'Office Supplies', sub: 'Fasteners', name: 'Binder Clips, Assorted Sizes, 24/Pack', price: 6.3 },
  { id: 'OFF-ST-10002743', category: 'Office Supplies', sub: 'Storage', name: 'Steel Shelving, Boltless, 5-Shelf, 36" W', price: 136.4 },
  { id: 'OFF-AR-10003056', category: 'Office Supplies', sub: 'Art', name: 'Sticky Notes 3" x 3", "Canary", 12 Pads', price: 9.8 },
  { id: 'OFF-BI-10004094', category: 'Office Supplies', sub: 'Binders', name: 'Ring Binder, 1", "Durable" View, Black', price: 5.9 },
  { id: 'FUR-CH-10000454', category: 'Furniture', sub: 'Chairs', name: 'Office Chair, Mesh Back, Adjustable Arms', price: 189.0 },
  { id: 'FUR-BO-10001798', category: 'Furniture', sub: 'Bookcases', name: 'Bookcase, 5-Shelf, "Espresso" Finish', price: 149.5 },
  { id: 'FUR-FU-10001487', category: 'Furniture', sub: 'Furnishings', name: 'Desk Lamp "Arc", LED, 7W', price: 34.99 },
  { id: 'FUR-TA-10000577', category: 'Furniture', sub: 'Tables', name: 'Conference Table, Oval, 72" x 36"', price: 412.0 },
  { id: 'TEC-AC-10002167', category: 'Technology', sub: 'Accessories', name: 'Wireless Mouse', price: 19.99 },
  { id: 'TEC-AC-10003027', category: 'Technology', sub: 'Accessories', name: 'USB-C Cable, 6 ft, Braided', price: 12.49 },
  { id: 'TEC-PH-10002275', category: 'Technology', sub: 'Phones', name: 'Phone Headset, Noise-Cancelling, "Pro" Edition', price: 89.0 },
  { id: 'TEC-MA-10000822', category: 'Technology', sub: 'Machines', name: 'Label Printer, 2 5/16" Tape, USB', price: 129.99 },
] as const;

const CUSTOMERS = [
  { id: 'DP-13000', name: 'Darren Powers', segment: 'Consumer' },
  { id: 'PO-19195', name: "Phillina O'Brien", segment: 'Home Office' },
  { id: 'MA-17560', name: 'Matt Abelman', segment: 'Home Office' },
  { id: 'JA-15970', name: 'José Álvarez', segment: 'Corporate' },
  { id: 'CW-11905', name: 'Chen, Wei', segment: 'Corporate' },
  { id: 'KD-16270', name: 'Karen "KD" Daniels', segment: 'Consumer' },
  { id: 'BS-11590', name: 'Brendan Sweed', segment: 'Corporate' },
  { id: 'ML-17395', name: 'Marina Lichtenstein', segment: 'Consumer' },
] as const;

const CITIES = [
  { city: 'Houston', state: 'Texas', postal: '77095', region: 'Central' },
  { city: 'Naperville', state: 'Illinois', postal: '60540', region: 'Central' },
  { city: 'New York City', state: 'New York', postal: '10024', region: 'East' },
  { city: 'Boston', state: 'Massachusetts', postal: '02108', region: 'East' },
  { city: 'Washington', state: 'District of Columbia', postal: '20016', region: 'East' },
  { city: 'Los Angeles', state: 'California', postal: '90036', region: 'West' },
  { city: 'Seattle', state: 'Washington', postal: '98105', region: 'West' },
  { city: 'Winston-Salem', state: 'North Carolina', postal: '27103', region: 'South' },
] as const;

const SHIP_MODES = [['Standard Class', 4, 60], ['Second Class', 2, 20], ['First Class', 1, 15], ['Same Day', 0, 5]] as const;

/** Orders have one to four lines: line `index` belongs to order `orderOf(index)`. */
const orderOf = (index: number): number => Math.floor((index * 2) / 5);

const isoDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10) + 'T00:00:00';

/** Record `index` (0-based) of the file generated under `seed`. */
export function orderRecord(index: number, seed: number): Record<string, string> {
  const order = orderOf(index);
  // What the whole order shares comes from the order's random stream, so its lines agree.
  const orderRandom = recordRandom(seed, order, 1);
  const customer = pick(orderRandom, CUSTOMERS);
  const place = pick(orderRandom, CITIES);
  const [mode, shipDays] = pickWeighted(orderRandom, SHIP_MODES.map(([m, d, w]) => [[m, d] as const, w] as const));
  const orderDay = FIRST_DAY + Math.floor(index / LINES_PER_DAY) * 86_400_000;
  const year = new Date(orderDay).getUTCFullYear();
  const random = recordRandom(seed, index);
  const product = pick(random, PRODUCTS);
  const quantity = between(random, 1, 9);
  const discount = pickWeighted(random, [[0, 60], [0.1, 10], [0.2, 25], [0.5, 5]] as const);
  const sales = Math.round(product.price * quantity * (1 - discount) * 100) / 100;
  const margin = discount >= 0.5 ? -0.2 : 0.35 - discount - random() * 0.1;
  return {
    row_id: String(index + 1),
    order_id: `US-${year}-${pad(100000 + order, 6)}`,
    order_date: isoDay(orderDay),
    ship_date: isoDay(orderDay + shipDays * 86_400_000),
    ship_mode: mode,
    customer_id: customer.id,
    customer_name: customer.name,
    segment: customer.segment,
    country_region: 'United States',
    city: place.city,
    state_province: place.state,
    postal_code: place.postal,
    region: place.region,
    product_id: product.id,
    category: product.category,
    sub_category: product.sub,
    product_name: product.name,
    sales: sales.toFixed(2),
    quantity: String(quantity),
    discount: String(discount),
    profit: (Math.round(sales * margin * 10_000) / 10_000).toFixed(4),
  };
}

/** A publisher's next file: every 10th line (from the 4th) ships faster, every 20th (from the 8th) is cancelled. */
export function orderChange(position: number): 'update' | 'delete' | undefined {
  if (position % 20 === 7) return 'delete';
  if (position % 10 === 3) return 'update';
  return undefined;
}

export function updatedOrder(record: Record<string, unknown>): Record<string, unknown> {
  const quantity = Number(record.quantity) + 1;
  const unit = Number(record.sales) / Number(record.quantity);
  return { ...record, quantity: String(quantity), sales: (Math.round(unit * quantity * 100) / 100).toFixed(2), ship_mode: 'First Class' };
}
