/**
 * A leads file for `crm-mcp import`: CSV with a header row (parsed by csv-parse, loaded on use), or a JSON array
 * of rows as import_leads takes them. CSV columns: name, price, pipeline_id, status_id, responsible_user_id,
 * contact_name (or contact), first_name, last_name, phone, email, company (or company_name), company_phone,
 * company_email, tags (separated by
 * `;` or `,`), and `cf:<field id, code or label>` for custom fields. Empty cells are left out.
 */
import { readFile } from 'node:fs/promises';

type Row = Record<string, unknown>;

/** A leads file read: its rows, the line each row starts on (CSV), and the records the parser had to skip. */
export interface LeadsFile {
  rows: Row[];
  /** The file line (from 1) each row starts on; empty for JSON. */
  lines: number[];
  /** Records that are not rows (a wrong number of cells): never imported, reported with their line. */
  skipped: Array<{ line: number; reason: string }>;
}

const CSV_PARSER = 'csv-parse/sync';

interface Parsed {
  record: Record<string, string>;
  raw: string;
  info: { lines: number };
}

/** The line a record starts on: its parser reports the line it ends on, and its raw text spans the rest. */
function startLine(p: Parsed): number {
  const body = p.raw.replace(/^(\r?\n)+/, '').replace(/\r?\n$/, '');
  return p.info.lines - (body.match(/\n/g)?.length ?? 0);
}

/** The parser, loaded on use; a clear word when it is not installed. */
async function parseCsv(text: string): Promise<Omit<LeadsFile, 'rows'> & { records: Array<Record<string, string>> }> {
  let mod: { parse: (input: string, o: Record<string, unknown>) => Parsed[] };
  try {
    mod = (await import(CSV_PARSER)) as typeof mod;
  } catch {
    throw new Error('Reading CSV needs the csv-parse package (npm install csv-parse@^7.0.3); a .json file of rows works without it.');
  }
  const skipped: LeadsFile['skipped'] = [];
  // A record with the wrong number of cells would shift values into the wrong columns (a phone read as an
  // email): it is skipped and reported with its line, and the other rows still go.
  // Line ends as \n first: the parser counts a CRLF inside a quoted cell as two lines, and the line numbers
  // reported must be the ones an editor shows.
  const parsed = mod.parse(text.replace(/\r\n?/g, '\n'), {
    columns: (h: string[]) => h.map((x) => x.trim().toLowerCase()),
    skip_empty_lines: true,
    trim: true,
    bom: true,
    relax_column_count: false,
    info: true,
    raw: true,
    skip_records_with_error: true,
    on_skip: (e: { message?: string; lines?: number } | undefined) =>
      skipped.push({ line: e?.lines ?? 0, reason: (e?.message ?? 'unreadable record').replace(/ on line \d+$/, '') }),
  });
  return { records: parsed.map((p) => p.record), lines: parsed.map(startLine), skipped };
}

const num = (v: string): number | string => (/^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v);

/** One CSV record as an import row. */
export function csvRow(rec: Record<string, string>): Row {
  const get = (...names: string[]) => names.map((n) => rec[n]?.trim()).find((v) => v);
  const contact: Row = {};
  for (const [k, names] of [
    ['name', ['contact_name', 'contact']],
    ['first_name', ['first_name']],
    ['last_name', ['last_name']],
    ['phone', ['phone']],
    ['email', ['email']],
  ] as const) {
    const v = get(...names);
    if (v) contact[k] = v;
  }
  const row: Row = { contact };
  const name = get('name');
  if (name) row.name = name;
  for (const k of ['price', 'pipeline_id', 'status_id', 'responsible_user_id']) {
    const v = get(k);
    if (v) row[k] = num(v);
  }
  const company = get('company', 'company_name');
  const companyPhone = get('company_phone');
  const companyEmail = get('company_email');
  if (company) row.company = { name: company, ...(companyPhone ? { phone: companyPhone } : {}), ...(companyEmail ? { email: companyEmail } : {}) };
  const tags = get('tags');
  if (tags)
    row.tags = tags
      .split(/[;,]/)
      .map((t) => t.trim())
      .filter(Boolean);
  const fields = Object.entries(rec)
    .filter(([k, v]) => k.startsWith('cf:') && v?.trim())
    .map(([k, v]) => {
      const key = k.slice(3).trim();
      return { ...(/^\d+$/.test(key) ? { field_id: Number(key) } : { field_name: key }), value: v.trim() };
    });
  if (fields.length) row.custom_fields = fields;
  return row;
}

/** The rows of a leads file (.json: an array of rows; anything else: CSV with a header row). */
export async function readLeadsFile(path: string): Promise<LeadsFile> {
  const text = await readFile(path, 'utf8');
  if (/\.json$/i.test(path)) {
    const v = JSON.parse(text) as unknown;
    if (!Array.isArray(v)) throw new Error(`${path}: expected a JSON array of rows.`);
    return { rows: v as Row[], lines: [], skipped: [] };
  }
  const { records, lines, skipped } = await parseCsv(text);
  return { rows: records.map(csvRow), lines, skipped };
}
