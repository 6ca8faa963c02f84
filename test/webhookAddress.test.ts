// Which addresses a webhook may reach: the public internet only, unless the operator allows inside addresses.
import { checkedAddresses, isInsideAddress, parseWebhookUrl, type Resolve } from '../src/webhooks/address';

test.each([
  ['127.0.0.1', 'loopback'],
  ['10.1.2.3', 'RFC 1918'],
  ['172.16.0.1', 'RFC 1918'],
  ['172.31.255.255', 'RFC 1918'],
  ['192.168.1.1', 'RFC 1918'],
  ['169.254.169.254', 'link-local (cloud metadata)'],
  ['100.64.0.1', 'CGNAT'],
  ['0.0.0.0', 'unspecified'],
  ['255.255.255.255', 'broadcast'],
  ['224.0.0.1', 'multicast'],
  ['::1', 'IPv6 loopback'],
  ['::', 'IPv6 unspecified'],
  ['fc00::1', 'unique local'],
  ['fd12:3456::1', 'unique local'],
  ['fe80::1', 'IPv6 link-local'],
  ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
  ['::ffff:7f00:1', 'IPv4-mapped loopback, in hex'],
  ['::ffff:a9fe:a9fe', 'IPv4-mapped link-local, in hex'],
  ['64:ff9b::7f00:1', 'NAT64 of loopback'],
  ['not an address', 'not an address at all'],
])('%s is inside (%s)', (address) => {
  expect(isInsideAddress(address)).toBe(true);
});

test.each(['93.184.216.34', '8.8.8.8', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '::ffff:93.184.216.34'])('%s is outside', (address) => {
  expect(isInsideAddress(address)).toBe(false);
});

test('a host that resolves to any inside address is refused, even beside a public one; allowed, all are kept', async () => {
  const mixed: Resolve = async () => [
    { address: '93.184.216.34', family: 4 },
    { address: '10.0.0.5', family: 4 },
  ];
  const url = new URL('https://hooks.example.com/x');
  await expect(checkedAddresses(url, { allowPrivate: false, allowHttp: false }, mixed)).rejects.toThrow('hooks.example.com points inside (10.0.0.5)');
  await expect(checkedAddresses(url, { allowPrivate: true, allowHttp: false }, mixed)).resolves.toHaveLength(2);
});

test('a URL must be https (unless allowed), carry no credentials, and parse', () => {
  const strict = { allowPrivate: false, allowHttp: false };
  expect(() => parseWebhookUrl('http://hooks.example.com/x', strict)).toThrow('must be an https URL, not http');
  expect(() => parseWebhookUrl('ftp://hooks.example.com/x', { ...strict, allowHttp: true })).toThrow('must be an https URL, not ftp');
  expect(() => parseWebhookUrl('https://user:pw@hooks.example.com/x', strict)).toThrow('must not carry a user name or password');
  expect(() => parseWebhookUrl('hooks.example.com/x', strict)).toThrow('is not a URL');
  expect(parseWebhookUrl('https://hooks.example.com/x#frag', strict).toString()).toBe('https://hooks.example.com/x');
});
