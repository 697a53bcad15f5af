/**
 * What iptables 1.8 knows about rule options, as data: the basic options and
 * their long aliases, the options of the match modules and targets that
 * kube-proxy (and the rules living beside it) use, and how many values each
 * option takes. parseRuleWords uses it to attribute every option to its
 * module the way iptables does (by asking each loaded module, not by
 * position), the fake iptables to reject unknown options.
 */

/** Basic options, canonical short name by every spelling. */
export const BASIC_ALIASES: Readonly<Record<string, string>> = {
  '-p': '-p',
  '--protocol': '-p',
  '-s': '-s',
  '--source': '-s',
  '--src': '-s',
  '-d': '-d',
  '--destination': '-d',
  '--dst': '-d',
  '-i': '-i',
  '--in-interface': '-i',
  '-o': '-o',
  '--out-interface': '-o',
  '-f': '-f',
  '--fragment': '-f',
};

/** Order in which iptables-save prints the basic options. */
export const BASIC_ORDER: readonly string[] = ['-s', '-d', '-i', '-o', '-p', '-f'];

export const MATCH_FLAGS = new Set(['-m', '--match']);
export const JUMP_FLAGS: Readonly<Record<string, 'j' | 'g'>> = { '-j': 'j', '--jump': 'j', '-g': 'g', '--goto': 'g' };

/** Long option aliases that iptables-save prints under another name. */
export const OPTION_ALIASES: Readonly<Record<string, string>> = {
  '--destination-port': '--dport',
  '--source-port': '--sport',
  '--destination-ports': '--dports',
  '--source-ports': '--sports',
};

/** Options taking no value. Every other option takes one, except those in TWO_VALUE_OPTIONS. */
export const FLAG_OPTIONS = new Set([
  '--set',
  '--rcheck',
  '--update',
  '--remove',
  '--reap',
  '--rsource',
  '--rdest',
  '--rttl',
  '--random',
  '--random-fully',
  '--persistent',
  '--limit-iface-in',
  '--limit-iface-out',
  '--save-mark',
  '--restore-mark',
  '--notrack',
  '--syn',
  '--log-tcp-sequence',
  '--log-tcp-options',
  '--log-ip-options',
  '--log-uid',
  '--log-macdecode',
  '--physdev-is-in',
  '--physdev-is-out',
  '--physdev-is-bridged',
  '--transparent',
  '--nowildcard',
  '--restore-skmark',
  '--queue-bypass',
  '--fail-open',
  '--return-nomatch',
  '--update-counters',
  '--update-subcounters',
  // The SET target's flags (libxt_SET).
  '--exist',
  '--map-mark',
  '--map-prio',
  '--map-queue',
]);

/** `--match-set` (set match) and the SET target's `--add-set`/`--del-set`/`--map-set`: a set name and its flags, e.g. `src,dst`. */
export const TWO_VALUE_OPTIONS = new Set(['--tcp-flags', '--match-set', '--add-set', '--del-set', '--map-set']);

const PORT_OPTIONS = ['--sport', '--dport'];

/**
 * Options of match modules, in the order iptables-save prints them. A module
 * listed here is known completely: an option it does not list is unknown.
 */
export const MATCH_OPTIONS: Readonly<Record<string, readonly string[]>> = {
  tcp: [...PORT_OPTIONS, '--tcp-flags', '--syn', '--tcp-option'],
  udp: PORT_OPTIONS,
  udplite: PORT_OPTIONS,
  sctp: [...PORT_OPTIONS, '--chunk-types'],
  comment: ['--comment'],
  conntrack: [
    '--ctstate',
    '--ctproto',
    '--ctorigsrc',
    '--ctorigdst',
    '--ctreplsrc',
    '--ctrepldst',
    '--ctorigsrcport',
    '--ctorigdstport',
    '--ctreplsrcport',
    '--ctrepldstport',
    '--ctstatus',
    '--ctexpire',
    '--ctdir',
  ],
  state: ['--state'],
  mark: ['--mark'],
  connmark: ['--mark'],
  addrtype: ['--src-type', '--dst-type', '--limit-iface-in', '--limit-iface-out'],
  statistic: ['--mode', '--probability', '--every', '--packet'],
  recent: ['--set', '--rcheck', '--update', '--remove', '--seconds', '--reap', '--hitcount', '--rttl', '--name', '--mask', '--rsource', '--rdest'],
  multiport: ['--sports', '--dports', '--ports'],
  set: ['--match-set', '--return-nomatch', '--update-counters', '--update-subcounters', '--packets-eq', '--bytes-eq'],
  nfacct: ['--nfacct-name'],
  icmp: ['--icmp-type'],
  icmp6: ['--icmpv6-type'],
  physdev: ['--physdev-in', '--physdev-out', '--physdev-is-in', '--physdev-is-out', '--physdev-is-bridged'],
  limit: ['--limit', '--limit-burst'],
  mac: ['--mac-source'],
  iprange: ['--src-range', '--dst-range'],
  owner: ['--uid-owner', '--gid-owner', '--socket-exists', '--suppl-groups'],
  pkttype: ['--pkt-type'],
  length: ['--length'],
  socket: ['--transparent', '--nowildcard', '--restore-skmark'],
  string: ['--algo', '--from', '--to', '--string', '--hex-string', '--icase'],
};

/** Modules iptables 1.8.9 can load whose options are not listed above (accepted, options not checked). */
export const OTHER_MATCHES = new Set([
  'ah',
  'bpf',
  'cgroup',
  'cluster',
  'connbytes',
  'connlabel',
  'connlimit',
  'cpu',
  'dccp',
  'devgroup',
  'dscp',
  'ecn',
  'esp',
  'hashlimit',
  'helper',
  'hl',
  'ipcomp',
  'ipvs',
  'osf',
  'policy',
  'quota',
  'rateest',
  'realm',
  'rpfilter',
  'tcpmss',
  'time',
  'tos',
  'ttl',
  'u32',
  'frag',
  'hbh',
  'dst',
  'ipv6header',
  'mh',
  'rt',
  'eui64',
]);

/** Targets and their options in iptables-save order (complete for the targets listed). */
export const TARGET_OPTIONS: Readonly<Record<string, readonly string[]>> = {
  ACCEPT: [],
  DROP: [],
  RETURN: [],
  NOTRACK: [],
  TRACE: [],
  REJECT: ['--reject-with'],
  DNAT: ['--to-destination', '--random', '--persistent'],
  SNAT: ['--to-source', '--random', '--random-fully', '--persistent'],
  MASQUERADE: ['--to-ports', '--random', '--random-fully'],
  REDIRECT: ['--to-ports', '--random'],
  MARK: ['--set-xmark', '--set-mark', '--or-mark', '--and-mark', '--xor-mark'],
  CONNMARK: ['--set-xmark', '--set-mark', '--save-mark', '--restore-mark', '--nfmask', '--ctmask', '--mask', '--or-mark', '--and-mark', '--xor-mark'],
  LOG: ['--log-level', '--log-prefix', '--log-tcp-sequence', '--log-tcp-options', '--log-ip-options', '--log-uid', '--log-macdecode'],
  CT: ['--notrack', '--helper', '--ctevents', '--expevents', '--zone', '--zone-orig', '--zone-reply', '--timeout'],
  NFLOG: ['--nflog-group', '--nflog-prefix', '--nflog-range', '--nflog-size', '--nflog-threshold'],
  NFQUEUE: ['--queue-num', '--queue-balance', '--queue-bypass', '--fail-open', '--queue-cpu-fanout'],
};

/** Targets valid only in some tables (everything else is valid everywhere). */
export const TARGET_TABLES: Readonly<Record<string, readonly string[]>> = {
  DNAT: ['nat'],
  SNAT: ['nat'],
  MASQUERADE: ['nat'],
  REDIRECT: ['nat'],
  REJECT: ['filter', 'mangle', 'security'],
  // "The nat table is not intended for filtering, the use of DROP is therefore inhibited." (both backends)
  DROP: ['filter', 'mangle', 'raw', 'security'],
  CT: ['raw'],
  NOTRACK: ['raw'],
};

/** Protocols iptables-save prints by name. */
export const PROTOCOL_NUMBERS: Readonly<Record<string, string>> = {
  '1': 'icmp',
  '6': 'tcp',
  '17': 'udp',
  '58': 'ipv6-icmp',
  '132': 'sctp',
  '136': 'udplite',
};

/** Other targets iptables 1.8.9 can load (accepted by the fake iptables, options not checked). */
export const OTHER_TARGETS = new Set([
  'QUEUE',
  'AUDIT',
  'CHECKSUM',
  'CLASSIFY',
  'CONNSECMARK',
  'DSCP',
  'ECN',
  'HMARK',
  'IDLETIMER',
  'LED',
  'NETMAP',
  'SECMARK',
  'SET',
  'SYNPROXY',
  'TCPMSS',
  'TCPOPTSTRIP',
  'TEE',
  'TOS',
  'TPROXY',
  'TTL',
  'HL',
  'ULOG',
]);
