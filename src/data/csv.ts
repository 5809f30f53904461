// A small RFC 4180 reader: enough for "path,label" index files written by
// spreadsheets, pandas or Python's csv module (quotes, "" escapes, commas and
// newlines inside quotes, CRLF, a UTF-8 BOM). No dependency for 60 lines.
import { DatasetError } from './errors';

export interface CsvRow {
  /** 1-based line where the row starts, for error messages. */
  line: number;
  fields: string[];
}

/** Splits CSV text into rows of fields. Blank lines are skipped; `where` names the file in errors. */
export function parseCsv(text: string, where = 'CSV'): CsvRow[] {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const rows: CsvRow[] = [];
  let fields: string[] = [];
  let field = '';
  let line = 1;
  let rowLine = 1;
  let quoted = false; // inside a quoted field
  let wasQuoted = false; // the current field had quotes (so "" is a value, not a blank line)
  const endRow = () => {
    fields.push(field);
    if (!(fields.length === 1 && fields[0] === '' && !wasQuoted)) rows.push({ line: rowLine, fields });
    fields = [];
    field = '';
    wasQuoted = false;
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else {
        if (ch === '\n') line++;
        field += ch;
      }
    } else if (ch === '"' && field === '') {
      quoted = true;
      wasQuoted = true;
    } else if (ch === ',') {
      fields.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      endRow();
      line++;
      rowLine = line;
    } else {
      field += ch; // a stray quote mid-field is kept literally, as Python's csv module does
    }
  }
  if (quoted) throw new DatasetError('BAD_CSV', `${where}: unterminated quoted field starting on line ${rowLine}`);
  if (field !== '' || fields.length > 0 || wasQuoted) endRow();
  return rows;
}
