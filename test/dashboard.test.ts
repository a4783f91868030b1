/// <reference lib="dom" />
// The dashboard in headless Chromium (Debian's chromium, driven by playwright-core) against 3
// master processes and a worker: sign in, see 3 masters with exactly one leader, scale a
// Deployment and see its pods appear, SIGKILL the leader and see the page mark the new one
// within 2 s. Screenshots of each page go to test/artifacts/ (ignored by git) for review.
// Without Chromium the test reports itself skipped, with the command that installs it.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ADMIN_TOKEN, ProcessCluster } from './support/masters.ts';
import { HttpApi } from './support/http-api.ts';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const ARTIFACTS = fileURLToPath(new URL('./artifacts/', import.meta.url));
const skip = CHROMIUM === undefined ? 'Chromium is not installed: sudo apt-get install -y chromium (then run the tests again)' : false;

describe('the dashboard in a browser', { timeout: 180_000, skip }, () => {
  let cluster: ProcessCluster;
  let browser: Browser;
  let page: Page;
  let api: HttpApi;
  const shot = (name: string) => page.screenshot({ path: `${ARTIFACTS}${name}.png`, fullPage: true });

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    cluster = await ProcessCluster.create({ masters: 3, api: true, proxied: false, workers: 1 });
    await Promise.all(cluster.names.map((n) => cluster.start(n)));
    await cluster.leader();
    await Promise.all(cluster.names.map((n) => cluster.apiReady(n)));
    await cluster.startAgent('w1');
    api = new HttpApi(cluster.names.map((n) => cluster.apiUrl(n)), ADMIN_TOKEN, cluster.caCert());
    browser = await chromium.launch({ executablePath: CHROMIUM!, args: ['--no-sandbox'] });
    page = await (await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1200, height: 800 } })).newPage();
    page.on('pageerror', (err) => process.stderr.write(`dashboard page error: ${err.message}\n`));
  });
  after(async () => {
    await browser?.close();
    await cluster?.stop();
  });

  test('sign in; 3 masters, one leader; scale a Deployment; the leader SIGKILLed is replaced on the page within 2 s', async () => {
    // Served by a master that is not the leader, so the page outlives the leader's SIGKILL.
    const leader = await cluster.leader();
    const follower = cluster.names.find((n) => n !== leader)!;
    await page.goto(`${cluster.apiUrl(follower)}/ui`);
    await page.fill('#token', 'not-a-token-0123456789');
    await page.click('#signin button');
    await page.waitForSelector('#signin-error:has-text("refused")');
    await page.fill('#token', ADMIN_TOKEN);
    await page.click('#signin button');
    await page.waitForSelector('#masters tr[data-master]');
    await page.waitForFunction(() => document.querySelectorAll('#masters tr[data-role="leader"]').length === 1 && document.querySelectorAll('#masters tr[data-master]').length === 3);
    const roles = await page.$$eval('#masters tr[data-master]', (rows) => rows.map((r) => [(r as HTMLElement).dataset['master'], (r as HTMLElement).dataset['role']]));
    assert.deepEqual(roles.map((r) => r[0]).sort(), ['m1', 'm2', 'm3']);
    assert.deepEqual(roles.filter((r) => r[1] === 'leader').map((r) => r[0]), [leader]);
    await shot('cluster');

    await page.click('nav a[href="#nodes"]');
    await page.waitForSelector('.card[data-node="w1"]:has-text("Ready")');
    await shot('nodes');

    await api.ok('POST', '/apis/apps/v1/namespaces/default/deployments', {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web' },
      spec: { replicas: 1, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', command: ['sleep', '600'], env: [{ name: 'FLOTILLA_TEST_CLUSTER', value: cluster.dir }] }] } } },
    }, 201);
    await page.click('nav a[href="#workloads"]');
    await page.waitForSelector('#deployments tr[data-deployment="web"]');
    await page.fill('#deployments tr[data-deployment="web"] input', '3');
    await page.click('#deployments tr[data-deployment="web"] button');
    // The pods appear, live, without a reload.
    await page
      .waitForFunction(() => [...document.querySelectorAll('#pods tr[data-pod]')].filter((r) => r.textContent?.includes('Running')).length === 3, undefined, { timeout: 30_000 })
      .catch(async (err: unknown) => {
        await shot('failed-scale'); // to see why
        throw err;
      });
    await page.waitForSelector('#deployments tr[data-deployment="web"] td.ok');
    await shot('workloads');
    await page.setViewportSize({ width: 390, height: 844 }); // a phone
    await shot('workloads-phone');
    await page.setViewportSize({ width: 1200, height: 800 });
    await page.click('nav a[href="#events"]');
    await page.waitForSelector('#events tr td');
    await shot('events');

    // Follow a pod's log, delete a pod (the Deployment replaces it), apply YAML.
    await page.click('nav a[href="#workloads"]');
    await page.waitForSelector('#pods tr[data-pod]');
    const victim = await page.$eval('#pods tr[data-pod]', (r) => (r as HTMLElement).dataset['pod']!);
    await page.click(`#pods tr[data-pod="${victim}"] button[data-logs]`);
    await page.waitForSelector('#log');
    page.once('dialog', (d) => void d.dismiss());
    await page.click(`#pods tr[data-pod="${victim}"] button[data-delete]`);
    await page.waitForFunction((gone) => document.querySelector(`#pods tr[data-pod="${gone}"]`) === null && [...document.querySelectorAll('#pods tr[data-pod]')].filter((r) => r.textContent?.includes('Running')).length === 3, victim, { timeout: 30_000 });
    await page.click('nav a[href="#apply"]');
    await page.fill('#yaml', 'apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: { app: web }\n  ports: [{ port: 18080 }]\n');
    await page.click('#apply');
    await page.waitForSelector('#apply-result:has-text("service/web created")');
    assert.equal((await api.ok('GET', '/api/v1/namespaces/default/services/web')).spec.ports[0].port, 18080);
    await page.click('nav a[href="#services"]');
    await page.waitForSelector('#services tr[data-service="web"]:has-text("local")');
    await shot('services');

    await page.click('nav a[href="#cluster"]');
    await page.waitForSelector(`#masters tr[data-master="${leader}"][data-role="leader"]`);
    await cluster.kill(leader);
    const killedAt = Date.now();
    await page.waitForFunction((old) => {
      const row = document.querySelector('#masters tr[data-role="leader"]') as HTMLElement | null;
      return row !== null && row.dataset['master'] !== old;
    }, leader, { timeout: 2000 });
    const took = Date.now() - killedAt;
    const newLeader = await page.$eval('#masters tr[data-role="leader"]', (r) => (r as HTMLElement).dataset['master']);
    assert.notEqual(newLeader, leader);
    assert.ok(took <= 2000, `marked within 2 s (took ${took} ms)`);
    await page.waitForSelector(`#masters tr[data-master="${leader}"][data-role="unreachable"]`);
    assert.match(await page.textContent('#timeline') ?? '', new RegExp(`${newLeader} leads`));
    await shot('cluster-after-kill');
    // Hand leadership to the other live master from the page.
    const other = cluster.names.find((n) => n !== leader && n !== newLeader)!;
    await page.click(`#masters tr[data-master="${other}"] button[data-transfer]`);
    await page.waitForSelector(`#masters tr[data-master="${other}"][data-role="leader"]`, { timeout: 5000 });
  });
});
