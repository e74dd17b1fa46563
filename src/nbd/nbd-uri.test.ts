import { test } from "node:test";
import assert from "node:assert/strict";
import { isNbdUri, parseNbdUri, NBD_DEFAULT_PORT } from "./nbd-uri.js";

// The examples of NetworkBlockDevice/nbd doc/uri.md and libnbd's nbd_connect_uri documentation.

test("nbd://example.com: TCP, default port, empty export name", () => {
  const u = parseNbdUri("nbd://example.com");
  assert.equal(u.scheme, "nbd");
  assert.equal(u.tls, false);
  assert.equal(u.host, "example.com");
  assert.equal(u.port, NBD_DEFAULT_PORT);
  assert.equal(u.exportName, "");
});

test("nbd://example.com/disk and nbd://example.com//disk: the first slash is not part of the name", () => {
  assert.equal(parseNbdUri("nbd://example.com/disk").exportName, "disk");
  assert.equal(parseNbdUri("nbd://example.com//disk").exportName, "/disk");
  assert.equal(parseNbdUri("nbd://example.com/").exportName, "");
});

test("the export name is percent-decoded; the port is read", () => {
  const u = parseNbdUri("nbd://localhost:10810/vg%2Flv%20one");
  assert.equal(u.port, 10810);
  assert.equal(u.exportName, "vg/lv one");
});

test("IPv6 literals lose their brackets", () => {
  const u = parseNbdUri("nbd://[::1]:10809/x");
  assert.equal(u.host, "::1");
  assert.equal(u.port, 10809);
});

test("nbds with a PSK identity and file, as nbdkit-tls(1) writes it", () => {
  const u = parseNbdUri("nbds://alice@host:10809/export?tls-psk-file=/etc/keys.psk");
  assert.equal(u.tls, true);
  assert.equal(u.tlsUsername, "alice");
  assert.equal(u.tlsPskFile, "/etc/keys.psk");
  assert.equal(u.exportName, "export");
  assert.equal(u.display, "nbds://alice@host:10809/export?tls-psk-file=/etc/keys.psk");
});

test("nbd+unix and nbds+unix need ?socket= and no host", () => {
  const u = parseNbdUri("nbd+unix:///export?socket=/tmp/sock");
  assert.equal(u.socketPath, "/tmp/sock");
  assert.equal(u.host, undefined);
  assert.equal(u.exportName, "export");
  const s = parseNbdUri("nbds+unix://alice@/?socket=/tmp/s&tls-certificates=/pki&tls-verify-peer=0");
  assert.equal(s.tls, true);
  assert.equal(s.tlsUsername, "alice");
  assert.equal(s.tlsCertificates, "/pki");
  assert.equal(s.tlsVerifyPeer, false);
  assert.throws(() => parseNbdUri("nbd+unix:///export"), /needs \?socket=PATH/);
  assert.throws(() => parseNbdUri("nbd+unix://host/export?socket=/tmp/s"), /must not name a host/);
});

test("a leading %00 in socket= is the abstract namespace", () => {
  assert.equal(parseNbdUri("nbd+unix:///?socket=%00abstract").socketPath, "\0abstract");
});

test("a password never reaches the display form", () => {
  const u = parseNbdUri("nbds://alice:secret@host/e?tls-psk-file=/k");
  assert.equal(u.tlsUsername, "alice");
  assert.doesNotMatch(u.display, /secret/);
  assert.equal(u.display, "nbds://alice@host/e?tls-psk-file=/k");
});

test("bad URIs are diagnosed", () => {
  assert.throws(() => parseNbdUri("nbd+vsock://1:10809/"), /unsupported NBD URI scheme/);
  assert.throws(() => parseNbdUri("nbd://"), /needs a host/);
  assert.throws(() => parseNbdUri("nbd://h:99999/"), /bad port/);
  assert.throws(() => parseNbdUri("nbd://h/?frobnicate=1"), /unknown NBD URI parameter "frobnicate"/);
  assert.throws(() => parseNbdUri("nbd://h/%zz"), /percent-encoding/);
  assert.throws(() => parseNbdUri("nbd://h/?socket=/x"), /only for nbd\+unix/);
  assert.throws(() => parseNbdUri("nbds://h/?tls-verify-peer=maybe"), /tls-verify-peer/);
  // x- parameters are experimental: accepted and ignored, as the spec allows.
  assert.equal(parseNbdUri("nbd://h/?x-foo=1").host, "h");
});

test("isNbdUri tells URIs from paths", () => {
  assert.equal(isNbdUri("nbd://h/e"), true);
  assert.equal(isNbdUri("NBDS+UNIX:///?socket=/s"), true);
  assert.equal(isNbdUri("/dev/sda"), false);
  assert.equal(isNbdUri("./nbd://x"), false);
});
