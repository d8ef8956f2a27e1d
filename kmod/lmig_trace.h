/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Tracepoints of lmig.ko, system "lmig": tracefs events/lmig/.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM lmig

#if !defined(_LMIG_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _LMIG_TRACE_H

#include <linux/tracepoint.h>

/* A session attached to a range: its notifiers and address spaces. */
TRACE_EVENT(lmig_attach,
	    TP_PROTO(u64 session, unsigned long ino, u64 offset, u64 length,
		     unsigned int mms, unsigned int notifiers),
	    TP_ARGS(session, ino, offset, length, mms, notifiers),
	    TP_STRUCT__entry(__field(u64, session)
			     __field(unsigned long, ino)
			     __field(u64, offset)
			     __field(u64, length)
			     __field(unsigned int, mms)
			     __field(unsigned int, notifiers)),
	    TP_fast_assign(__entry->session = session;
			   __entry->ino = ino;
			   __entry->offset = offset;
			   __entry->length = length;
			   __entry->mms = mms;
			   __entry->notifiers = notifiers;),
	    TP_printk("session=%llu ino=%lu offset=%llu length=%llu mms=%u notifiers=%u",
		      __entry->session, __entry->ino, __entry->offset,
		      __entry->length, __entry->mms, __entry->notifiers)
);

/* A session closed after so many harvests. */
TRACE_EVENT(lmig_detach,
	    TP_PROTO(u64 session, u64 harvests, u64 dirty),
	    TP_ARGS(session, harvests, dirty),
	    TP_STRUCT__entry(__field(u64, session)
			     __field(u64, harvests)
			     __field(u64, dirty)),
	    TP_fast_assign(__entry->session = session;
			   __entry->harvests = harvests;
			   __entry->dirty = dirty;),
	    TP_printk("session=%llu harvests=%llu dirty=%llu",
		      __entry->session, __entry->harvests, __entry->dirty)
);

/*
 * One harvest: folios and pages of the range visited, pages reported
 * (notified: of those, only because a mapping was torn down), time spent.
 */
TRACE_EVENT(lmig_harvest,
	    TP_PROTO(u64 session, u64 folios, u64 pages, u64 dirty,
		     u64 notified, u64 ns),
	    TP_ARGS(session, folios, pages, dirty, notified, ns),
	    TP_STRUCT__entry(__field(u64, session)
			     __field(u64, folios)
			     __field(u64, pages)
			     __field(u64, dirty)
			     __field(u64, notified)
			     __field(u64, ns)),
	    TP_fast_assign(__entry->session = session;
			   __entry->folios = folios;
			   __entry->pages = pages;
			   __entry->dirty = dirty;
			   __entry->notified = notified;
			   __entry->ns = ns;),
	    TP_printk("session=%llu folios=%llu pages=%llu dirty=%llu notified=%llu ns=%llu",
		      __entry->session, __entry->folios, __entry->pages,
		      __entry->dirty, __entry->notified, __entry->ns)
);

#endif /* _LMIG_TRACE_H */

/* This part must be outside the multi-read protection. */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE lmig_trace
#include <trace/define_trace.h>
