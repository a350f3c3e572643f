// Headless Chromium (Debian's /usr/bin/chromium) driven over the DevTools protocol on a pipe:
// load a page, record every request the page makes, read the DOM, take a full-page screenshot.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';

export const CHROMIUM = process.env.FAILWATCH_CHROMIUM ?? '/usr/bin/chromium';

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM);
}

export interface PageRequest {
  url: string;
  method: string;
  /** Document, Stylesheet, Image, Font, Script, Other, ... */
  type: string;
  /** Why it did not load (e.g. `csp`), when it did not. */
  blockedReason?: string;
}

export interface CapturedPage {
  /** HTTP status of the document. */
  status: number;
  /** Every request the page made, the document included, in order. */
  requests: PageRequest[];
  /** Console messages and browser log entries (CSP violations show up here). */
  messages: string[];
  /** The value of `evaluate`, run in the loaded page. */
  evaluated: unknown;
  /** The whole page as PNG, and its size in CSS pixels. */
  png: Buffer;
  width: number;
  height: number;
}

export interface CaptureOptions {
  /** Viewport width in CSS pixels (default 1400). */
  width?: number;
  /** Initial viewport height (default 200): the screenshot is as tall as the page, at least this. */
  height?: number;
  /** A JavaScript expression evaluated in the page after load (DevTools ignore the page's CSP). */
  evaluate?: string;
  /** Quiet time after the load event before the page counts as settled (default 500 ms). */
  settleMs?: number;
  /** Sent with every request of the page, e.g. an Authorization header. */
  headers?: Record<string, string>;
}

export interface Chromium {
  capture(url: string, options?: CaptureOptions): Promise<CapturedPage>;
  close(): Promise<void>;
}

interface CdpMessage {
  id?: number;
  method?: string;
  params?: Record<string, any>;
  result?: Record<string, any>;
  error?: { message: string };
  sessionId?: string;
}

/** Starts one headless browser; pages are captured one at a time, each in a fresh tab. */
export async function launchChromium(): Promise<Chromium> {
  const profile = mkdtempSync(join(tmpdir(), 'fw-chromium-'));
  const child: ChildProcess = spawn(
    CHROMIUM,
    [
      '--headless',
      '--no-sandbox', // tests run as root
      '--disable-gpu',
      '--remote-debugging-pipe',
      `--user-data-dir=${profile}`,
      '--no-first-run',
      '--no-default-browser-check',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-default-apps',
      '--disable-extensions',
      '--disable-sync',
      '--hide-scrollbars',
      '--mute-audio',
      '--font-render-hinting=none',
      'about:blank',
    ],
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const toBrowser = child.stdio[3] as Writable;
  const fromBrowser = child.stdio[4] as Readable;
  const pending = new Map<number, { resolve: (m: CdpMessage) => void; reject: (e: Error) => void }>();
  const listeners = new Set<(m: CdpMessage) => void>();
  let exited: Error | undefined;
  child.on('exit', (code, signal) => {
    exited = new Error(`chromium exited (${code ?? signal}): ${stderr}`);
    for (const p of pending.values()) p.reject(exited);
    pending.clear();
  });
  let buffered = Buffer.alloc(0);
  fromBrowser.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    for (let end = buffered.indexOf(0); end >= 0; end = buffered.indexOf(0)) {
      const message = JSON.parse(buffered.subarray(0, end).toString('utf8')) as CdpMessage;
      buffered = buffered.subarray(end + 1);
      if (message.id !== undefined) {
        const p = pending.get(message.id);
        pending.delete(message.id);
        if (message.error) p?.reject(new Error(`CDP: ${message.error.message}`));
        else p?.resolve(message);
      } else for (const listener of listeners) listener(message);
    }
  });
  let nextId = 1;
  const send = (method: string, params: Record<string, unknown> = {}, sessionId?: string) => {
    if (exited) return Promise.reject(exited);
    const id = nextId++;
    const done = new Promise<CdpMessage>((resolve, reject) => pending.set(id, { resolve, reject }));
    toBrowser.write(`${JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) })}\0`);
    return done.then((m) => m.result ?? {});
  };
  await send('Browser.getVersion');

  async function capture(url: string, options: CaptureOptions = {}): Promise<CapturedPage> {
    const width = options.width ?? 1400;
    const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
    const requests = new Map<string, PageRequest>();
    const messages: string[] = [];
    let documentStatus = 0;
    let loaded = false;
    let lastActivity = Date.now();
    const onEvent = (m: CdpMessage) => {
      if (m.sessionId !== sessionId || !m.params) return;
      const p = m.params;
      lastActivity = Date.now();
      if (m.method === 'Network.requestWillBeSent' && !requests.has(p.requestId))
        requests.set(p.requestId, { url: p.request.url, method: p.request.method, type: p.type ?? 'Other' });
      else if (m.method === 'Network.responseReceived' && p.type === 'Document' && documentStatus === 0)
        documentStatus = p.response.status;
      else if (m.method === 'Network.loadingFailed' && p.blockedReason) {
        const r = requests.get(p.requestId);
        if (r) r.blockedReason = p.blockedReason;
      } else if (m.method === 'Log.entryAdded') messages.push(`${p.entry.source}: ${p.entry.text}`);
      else if (m.method === 'Runtime.consoleAPICalled')
        messages.push(`console.${p.type}: ${JSON.stringify(p.args?.map((a: any) => a.value))}`);
      else if (m.method === 'Page.loadEventFired') loaded = true;
    };
    listeners.add(onEvent);
    try {
      await send('Network.enable', {}, sessionId);
      if (options.headers) await send('Network.setExtraHTTPHeaders', { headers: options.headers }, sessionId);
      await send('Page.enable', {}, sessionId);
      await send('Log.enable', {}, sessionId);
      await send('Runtime.enable', {}, sessionId);
      await send(
        'Emulation.setDeviceMetricsOverride',
        { width, height: options.height ?? 200, deviceScaleFactor: 1, mobile: false },
        sessionId,
      );
      const nav = await send('Page.navigate', { url }, sessionId);
      if (nav.errorText) throw new Error(`navigating to ${url}: ${nav.errorText}`);
      const settleMs = options.settleMs ?? 500;
      const deadline = Date.now() + 30_000;
      while (!loaded || Date.now() - lastActivity < settleMs) {
        if (Date.now() > deadline) throw new Error(`${url} did not finish loading`);
        await new Promise((r) => setTimeout(r, 50));
      }
      let evaluated: unknown;
      if (options.evaluate) {
        const r = await send(
          'Runtime.evaluate',
          { expression: options.evaluate, returnByValue: true, awaitPromise: true },
          sessionId,
        );
        if (r.exceptionDetails) throw new Error(`evaluate: ${JSON.stringify(r.exceptionDetails)}`);
        evaluated = r.result?.value;
      }
      const metrics = await send('Page.getLayoutMetrics', {}, sessionId);
      const size = metrics.cssContentSize ?? metrics.contentSize;
      const pageWidth = Math.max(width, Math.ceil(size.width));
      const pageHeight = Math.ceil(size.height);
      await send(
        'Emulation.setDeviceMetricsOverride',
        { width: pageWidth, height: pageHeight, deviceScaleFactor: 1, mobile: false },
        sessionId,
      );
      const shot = await send(
        'Page.captureScreenshot',
        {
          format: 'png',
          captureBeyondViewport: true,
          clip: { x: 0, y: 0, width: pageWidth, height: pageHeight, scale: 1 },
        },
        sessionId,
      );
      return {
        status: documentStatus,
        requests: [...requests.values()],
        messages,
        evaluated,
        png: Buffer.from(shot.data as string, 'base64'),
        width: pageWidth,
        height: pageHeight,
      };
    } finally {
      listeners.delete(onEvent);
      await send('Target.closeTarget', { targetId }).catch(() => {});
    }
  }

  return {
    capture,
    async close() {
      if (!exited) {
        const gone = new Promise((r) => child.once('exit', r));
        await send('Browser.close').catch(() => {});
        await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))]);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Width and height of a PNG, from its IHDR chunk. */
export function pngSize(png: Buffer): { width: number; height: number } {
  if (png.subarray(1, 4).toString('latin1') !== 'PNG') throw new Error('not a PNG');
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}
