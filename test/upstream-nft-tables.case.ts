/**
 * The `ip kube-proxy` table upstream kube-proxy's nftables mode leaves on a
 * node for one Service (ns1/web: ClusterIP 172.30.0.10:80, NodePort 30080,
 * endpoints 10.244.1.2 and 10.244.1.3 on port 8080, both local), pods
 * 10.244.0.0/16, node IP 192.168.50.11, ServiceCIDR 172.30.0.0/16, written
 * as knftables writes it (numbers for priorities, rules added one by one),
 * from ../shared/reference/nftables-mode.md:
 * - GENERATION_B: v1.36+ (§1.10): no mark-for-masquerade chain, no
 *   endpoint chains (DNAT through a numgen map), the hairpin-connections set,
 *   the ClusterIP masquerade rule in `services`;
 * - GENERATION_A_PRIME: the releases before v1.33 (§0, an estimate from the
 *   b0f823e6 copy): base chains filter-prerouting and filter-input/forward/
 *   output at priority -110 (ours: 0, and -pre-dnat names), the extra
 *   filter-output-post-dnat at -90, the ClusterIP masquerade rule matching the
 *   port.
 * Both load into the kernel as they are; neither loads over the other (a base
 * chain's priority cannot change in place: "Operation not supported").
 */

export const GENERATION_B = `
add table ip kube-proxy { comment "rules for kube-proxy" ; }
add chain ip kube-proxy cluster-ips-check
add chain ip kube-proxy filter-prerouting-pre-dnat { type filter hook prerouting priority -110 ; }
add chain ip kube-proxy filter-output-pre-dnat { type filter hook output priority -110 ; }
add chain ip kube-proxy filter-forward { type filter hook forward priority 0 ; }
add chain ip kube-proxy filter-input { type filter hook input priority 0 ; }
add chain ip kube-proxy filter-output { type filter hook output priority 0 ; }
add chain ip kube-proxy firewall-check
add chain ip kube-proxy masquerading
add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }
add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority 100 ; }
add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }
add chain ip kube-proxy nodeport-endpoints-check
add chain ip kube-proxy reject-chain { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }
add chain ip kube-proxy services
add chain ip kube-proxy service-endpoints-check
add set ip kube-proxy cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }
add set ip kube-proxy nodeport-ips { type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }
add set ip kube-proxy hairpin-connections { type ipv4_addr . ipv4_addr . inet_proto . inet_service ; comment "service hairpin connections" ; }
add map ip kube-proxy firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }
add map ip kube-proxy no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }
add map ip kube-proxy no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }
add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }
add map ip kube-proxy service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }
add rule ip kube-proxy cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
add rule ip kube-proxy cluster-ips-check ip daddr { 172.30.0.0/16 } drop comment "Drop traffic to unallocated ClusterIPs"
add rule ip kube-proxy filter-prerouting-pre-dnat ct state new jump firewall-check
add rule ip kube-proxy filter-forward ct state new jump service-endpoints-check
add rule ip kube-proxy filter-forward ct state new jump cluster-ips-check
add rule ip kube-proxy filter-input ct state new jump nodeport-endpoints-check
add rule ip kube-proxy filter-input ct state new jump service-endpoints-check
add rule ip kube-proxy filter-output ct state new jump service-endpoints-check
add rule ip kube-proxy filter-output-pre-dnat ct state new jump firewall-check
add rule ip kube-proxy filter-output ct state new jump cluster-ips-check
add rule ip kube-proxy firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips
add rule ip kube-proxy masquerading mark and 0x4000 != 0 mark set mark xor 0x4000 masquerade fully-random
add rule ip kube-proxy masquerading ct status dnat ip saddr . ip daddr . meta l4proto . th dport @hairpin-connections masquerade fully-random
add rule ip kube-proxy nat-output jump services
add rule ip kube-proxy nat-postrouting jump masquerading
add rule ip kube-proxy nat-prerouting jump services
add rule ip kube-proxy nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports
add rule ip kube-proxy reject-chain reject
add rule ip kube-proxy services ip daddr @cluster-ips ip saddr != 10.244.0.0/16 mark set mark or 0x4000 comment "masquerade clusterIP traffic from outside cluster"
add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips
add rule ip kube-proxy services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports
add rule ip kube-proxy service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services
add element ip kube-proxy nodeport-ips { 192.168.50.11 }
add chain ip kube-proxy service-LV5ZVUGQ-ns1/web/tcp/p80
add rule ip kube-proxy service-LV5ZVUGQ-ns1/web/tcp/p80 meta l4proto tcp dnat ip addr . port to numgen random mod 2 map { 0 : 10.244.1.2 . 8080 , 1 : 10.244.1.3 . 8080 }
add chain ip kube-proxy external-LV5ZVUGQ-ns1/web/tcp/p80
add rule ip kube-proxy external-LV5ZVUGQ-ns1/web/tcp/p80 mark set mark or 0x4000 comment "masquerade"
add rule ip kube-proxy external-LV5ZVUGQ-ns1/web/tcp/p80 goto service-LV5ZVUGQ-ns1/web/tcp/p80
add element ip kube-proxy cluster-ips { 172.30.0.10 }
add element ip kube-proxy service-ips { 172.30.0.10 . tcp . 80 : goto service-LV5ZVUGQ-ns1/web/tcp/p80 }
add element ip kube-proxy service-nodeports { tcp . 30080 : goto external-LV5ZVUGQ-ns1/web/tcp/p80 }
add element ip kube-proxy hairpin-connections { 10.244.1.2 . 10.244.1.2 . tcp . 8080 , 10.244.1.3 . 10.244.1.3 . tcp . 8080 }
`;

export const GENERATION_A_PRIME = `
add table ip kube-proxy { comment "rules for kube-proxy" ; }
add chain ip kube-proxy cluster-ips-check
add chain ip kube-proxy filter-forward { type filter hook forward priority -110 ; }
add chain ip kube-proxy filter-input { type filter hook input priority -110 ; }
add chain ip kube-proxy filter-output { type filter hook output priority -110 ; }
add chain ip kube-proxy firewall-check
add chain ip kube-proxy filter-prerouting { type filter hook prerouting priority -110 ; }
add chain ip kube-proxy filter-output-post-dnat { type filter hook output priority -90 ; }
add chain ip kube-proxy mark-for-masquerade
add chain ip kube-proxy masquerading
add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }
add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority 100 ; }
add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }
add chain ip kube-proxy nodeport-endpoints-check
add chain ip kube-proxy reject-chain { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }
add chain ip kube-proxy services
add chain ip kube-proxy service-endpoints-check
add chain ip kube-proxy service-LV5ZVUGQ-ns1/web/tcp/p80
add chain ip kube-proxy external-LV5ZVUGQ-ns1/web/tcp/p80
add chain ip kube-proxy endpoint-MGPCLJJO-ns1/web/tcp/p80__10.244.1.2/8080
add chain ip kube-proxy endpoint-AL6H5J26-ns1/web/tcp/p80__10.244.1.3/8080
add set ip kube-proxy cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }
add set ip kube-proxy nodeport-ips { type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }
add map ip kube-proxy firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }
add map ip kube-proxy no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }
add map ip kube-proxy no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }
add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }
add map ip kube-proxy service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }
add rule ip kube-proxy cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
add rule ip kube-proxy cluster-ips-check ip daddr { 172.30.0.0/16 } drop comment "Drop traffic to unallocated ClusterIPs"
add rule ip kube-proxy filter-forward ct state new jump service-endpoints-check
add rule ip kube-proxy filter-forward ct state new jump cluster-ips-check
add rule ip kube-proxy filter-input ct state new jump nodeport-endpoints-check
add rule ip kube-proxy filter-input ct state new jump service-endpoints-check
add rule ip kube-proxy filter-output ct state new jump service-endpoints-check
add rule ip kube-proxy filter-output ct state new jump firewall-check
add rule ip kube-proxy filter-prerouting ct state new jump firewall-check
add rule ip kube-proxy filter-output-post-dnat ct state new jump cluster-ips-check
add rule ip kube-proxy firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips
add rule ip kube-proxy mark-for-masquerade mark set mark or 0x4000
add rule ip kube-proxy masquerading mark and 0x4000 == 0 return
add rule ip kube-proxy masquerading mark set mark xor 0x4000
add rule ip kube-proxy masquerading masquerade fully-random
add rule ip kube-proxy nat-output jump services
add rule ip kube-proxy nat-postrouting jump masquerading
add rule ip kube-proxy nat-prerouting jump services
add rule ip kube-proxy nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports
add rule ip kube-proxy reject-chain reject
add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips
add rule ip kube-proxy services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports
add rule ip kube-proxy service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services
add rule ip kube-proxy service-LV5ZVUGQ-ns1/web/tcp/p80 ip daddr 172.30.0.10 tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade
add rule ip kube-proxy service-LV5ZVUGQ-ns1/web/tcp/p80 numgen random mod 2 vmap { 0 : goto endpoint-MGPCLJJO-ns1/web/tcp/p80__10.244.1.2/8080 , 1 : goto endpoint-AL6H5J26-ns1/web/tcp/p80__10.244.1.3/8080 }
add rule ip kube-proxy external-LV5ZVUGQ-ns1/web/tcp/p80 jump mark-for-masquerade
add rule ip kube-proxy external-LV5ZVUGQ-ns1/web/tcp/p80 goto service-LV5ZVUGQ-ns1/web/tcp/p80
add rule ip kube-proxy endpoint-MGPCLJJO-ns1/web/tcp/p80__10.244.1.2/8080 ip saddr 10.244.1.2 jump mark-for-masquerade
add rule ip kube-proxy endpoint-MGPCLJJO-ns1/web/tcp/p80__10.244.1.2/8080 meta l4proto tcp dnat to 10.244.1.2:8080
add rule ip kube-proxy endpoint-AL6H5J26-ns1/web/tcp/p80__10.244.1.3/8080 ip saddr 10.244.1.3 jump mark-for-masquerade
add rule ip kube-proxy endpoint-AL6H5J26-ns1/web/tcp/p80__10.244.1.3/8080 meta l4proto tcp dnat to 10.244.1.3:8080
add element ip kube-proxy nodeport-ips { 192.168.50.11 }
add element ip kube-proxy cluster-ips { 172.30.0.10 }
add element ip kube-proxy service-ips { 172.30.0.10 . tcp . 80 : goto service-LV5ZVUGQ-ns1/web/tcp/p80 }
add element ip kube-proxy service-nodeports { tcp . 30080 : goto external-LV5ZVUGQ-ns1/web/tcp/p80 }
`;
