/* SPDX-License-Identifier: GPL-2.0-only */
/* What the TLS files of chan/ share among themselves; the API is tls.h. */
#ifndef LMIG_TLS_INT_H
#define LMIG_TLS_INT_H

#include <stddef.h>

struct bio_st;
struct tls_chan;

/*
 * Why the last verification or PSK look-up failed, in words: filled by
 * tls_conf.c's callbacks during a handshake, cleared and reported by
 * tls_handshake() (one thread).
 */
extern char tls_why[256];

/* OpenSSL's reason for the oldest queued error, or fallback. */
const char *tls_ossl_reason(const char *fallback);

/* The record layer's BIOs (tls_record.c), installed by tls_handshake(). */
struct bio_st *tls_sink_new(void);
struct bio_st *tls_source_new(void);
/* Take records written outside a seal (an alert) into out; their length. */
size_t tls_sink_take_spill(struct tls_chan *t, void *out, size_t cap);

#endif
