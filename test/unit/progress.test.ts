// Progress on stderr: a spinner on a terminal (through the CLI's own stderr writer), one line per
// finished step otherwise.
import { createProgress } from '../../src/runtime/progress';
import { createBufferedIo, fixedClock } from '../support/fakes';

describe('progress', () => {
  it('prints one line per step without a terminal', async () => {
    const io = createBufferedIo({ tty: false });
    const progress = await createProgress(io, fixedClock());
    progress.start('Starting NATS');
    progress.detail('0/1 ready');
    progress.succeed();
    progress.note('Warning: something');
    progress.start('Starting the registrar');
    progress.fail();
    expect(io.stderr()).toBe(
      'Starting NATS... done (0.0s)\nWarning: something\nStarting the registrar... failed (0.0s)\n',
    );
    expect(io.stdout()).toBe('');
  });

  it('spins with the current step and its detail on a terminal, then marks the outcome', async () => {
    const io = createBufferedIo({ tty: true });
    const progress = await createProgress(io, fixedClock());
    progress.start('Starting NATS');
    progress.detail('0/1 ready');
    await new Promise((resolve) => setTimeout(resolve, 250));
    progress.succeed();
    progress.start('Starting the registrar');
    progress.fail();
    const text = io.stderr();
    // eslint-disable-next-line no-control-regex
    const plain = text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
    expect(plain).toContain('Starting NATS: 0/1 ready');
    expect(plain).toContain('✔ Starting NATS (0.0s)\n');
    expect(plain).toContain('✖ Starting the registrar (0.0s)\n');
    // The cursor is hidden while spinning and shown again afterwards.
    expect(text.lastIndexOf('\x1b[?25h')).toBeGreaterThan(text.lastIndexOf('\x1b[?25l'));
    expect(io.stdout()).toBe('');
  });
});
