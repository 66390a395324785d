// A POSIX ustar archive of regular files, the format `tar` reads everywhere. Directories are not
// entries of their own: extractors create them from the files' paths. Pure: entries in, bytes
// out; the caller gzips it.

export interface TarEntry {
  /** Relative path with "/" separators: at most 255 bytes, split at a "/" beyond 100. */
  readonly path: string;
  readonly content: string | Buffer;
}

const BLOCK = 512;

/** An octal field of width bytes: digits, then NUL. */
function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

/** The path as ustar's name (100 bytes) and prefix (155 bytes), split at a "/". */
function splitPath(path: string): { name: string; prefix: string } {
  if (Buffer.byteLength(path) <= 100) return { name: path, prefix: '' };
  for (let index = path.indexOf('/'); index >= 0; index = path.indexOf('/', index + 1)) {
    const prefix = path.slice(0, index);
    const name = path.slice(index + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100) return { name, prefix };
  }
  throw new Error(`path too long for a tar archive: ${path}`);
}

function header(path: string, size: number, mtimeSeconds: number): Buffer {
  if (path === '' || path.startsWith('/') || path.split('/').includes('..'))
    throw new Error(`not a relative path inside the archive: "${path}"`);
  const { name, prefix } = splitPath(path);
  const block = Buffer.alloc(BLOCK);
  const put = (offset: number, text: string): void => {
    block.write(text, offset, 'utf8');
  };
  put(0, name);
  put(100, octal(0o644, 8));
  put(108, octal(0, 8));
  put(116, octal(0, 8));
  put(124, octal(size, 12));
  put(136, octal(mtimeSeconds, 12));
  put(148, '        ');
  put(156, '0');
  put(257, 'ustar\0');
  put(263, '00');
  put(265, 'root');
  put(297, 'root');
  put(345, prefix);
  let sum = 0;
  for (const byte of block) sum += byte;
  put(148, `${sum.toString(8).padStart(6, '0')}\0 `);
  return block;
}

/** The archive of the entries, in their order, every file dated mtime. */
export function tarArchive(entries: readonly TarEntry[], mtime: Date): Buffer {
  const seconds = Math.floor(mtime.getTime() / 1000);
  const parts: Buffer[] = [];
  for (const entry of entries) {
    const content =
      typeof entry.content === 'string' ? Buffer.from(entry.content, 'utf8') : entry.content;
    parts.push(header(entry.path, content.length, seconds), content);
    const padding = (BLOCK - (content.length % BLOCK)) % BLOCK;
    if (padding > 0) parts.push(Buffer.alloc(padding));
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}
