/* SPDX-License-Identifier: MIT */
/* TAP back ends (net/tap.c): what the NIC tells the TAP beyond net/backend.h. */
#ifndef KEEL_NET_TAP_H
#define KEEL_NET_TAP_H

struct net_backend;

/* Offloads the guest accepted (GUEST_CSUM, GUEST_TSO4/6): TUNSETOFFLOAD. */
#define NET_TAP_OFFLOAD_CSUM 1u
#define NET_TAP_OFFLOAD_TSO4 2u
#define NET_TAP_OFFLOAD_TSO6 4u

/*
 * Which offloaded frames the TAP may hand to the guest.  Only for back ends
 * with vnet_hdr (TAP); does nothing for others.  On the NIC's I/O thread.
 */
void net_tap_set_offload(struct net_backend *be, unsigned int offloads);

#endif
