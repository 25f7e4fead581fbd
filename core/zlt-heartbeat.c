/* zlt-heartbeat.c: one timer for sending, one deadline for silence.
 *
 * The deadline is re-armed lazily: receiving a frame only records the time, and when
 * the deadline fires it either reports a dead peer or moves itself to the new
 * deadline. A busy channel thus costs no timer churn per frame.
 *
 * Silence is only the peer's fault if we were listening. A process that was stopped
 * (SIGSTOP, a debugger) or a machine that slept finds its timers overdue and the peer's
 * frames still unread in the socket: then the peer gets a fresh timeout instead of the
 * blame, and ::stalled says how long we were away.
 *
 * Before the peer is declared dead it may be late: a heartbeat we sent got no frame
 * back within a margin (a quarter of the interval, 1 to 5 s). :late says so, and turns
 * off with the next frame; it costs one timer per heartbeat sent. */
#include "config.h"

#include "zlt-heartbeat.h"
#include "zlt-source.h"

struct _ZltHeartbeat
{
  GObject parent_instance;

  guint interval_ms;
  guint timeout_ms;
  gint64 last_rx;       /* monotonic µs */
  gint64 last_run_mono; /* when our tick or deadline last ran: monotonic µs */
  gint64 last_run_real; /* the same in wall-clock µs (it keeps counting during a sleep) */
  gint64 unanswered; /* first heartbeat sent since the peer's last frame: monotonic µs, 0 = none */
  gint64 latency_us;
  gboolean late;
  GSource *tick;
  GSource *deadline;
  GSource *late_check; /* due a margin after the first unanswered heartbeat */
};

G_DEFINE_FINAL_TYPE (ZltHeartbeat, zlt_heartbeat, G_TYPE_OBJECT)

enum
{
  PROP_0,
  PROP_LATENCY_US,
  PROP_LATE,
  N_PROPS
};
static GParamSpec *props[N_PROPS];

enum
{
  SIGNAL_SEND,
  SIGNAL_TIMEOUT,
  SIGNAL_STALLED,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

/* Whether we, not the peer, were away since our timers last ran: a tick is due every
 * interval, so a much longer gap (or a wall clock that ran ahead of the monotonic one,
 * as in a suspend) means this process did not run. Then the silence proves nothing and
 * the peer gets a fresh timeout. */
static gboolean
check_stalled (ZltHeartbeat *self)
{
  gint64 now_mono = g_get_monotonic_time ();
  gint64 now_real = g_get_real_time ();
  gint64 interval_us = (gint64) self->interval_ms * 1000;
  gint64 slack_us = MAX (interval_us / 2, 500 * 1000);
  gint64 gap_mono = now_mono - self->last_run_mono;
  gint64 gap_real = now_real - self->last_run_real;
  gint64 away_us = 0;

  if (gap_mono > interval_us + slack_us)
    away_us = gap_mono - interval_us;
  /* the wall clock may also jump when it is set: only a forward jump beyond the
   * monotonic gap, as a suspend makes, and a large one, counts */
  if (gap_real - gap_mono > MAX (slack_us, 2 * G_USEC_PER_SEC))
    away_us = MAX (away_us, gap_real - gap_mono);
  self->last_run_mono = now_mono;
  self->last_run_real = now_real;
  if (away_us == 0)
    return FALSE;
  self->last_rx = now_mono;
  g_signal_emit (self, signals[SIGNAL_STALLED], 0, (guint64) away_us);
  return TRUE;
}

/* How long after a heartbeat we sent the peer may stay silent before it is late. */
static gint64
late_margin_us (ZltHeartbeat *self)
{
  return CLAMP ((gint64) self->interval_ms * 1000 / 4, G_USEC_PER_SEC, 5 * G_USEC_PER_SEC);
}

static void
set_late (ZltHeartbeat *self, gboolean late)
{
  if (self->late == late)
    return;
  self->late = late;
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_LATE]);
}

static gboolean
on_tick (gpointer user_data)
{
  ZltHeartbeat *self = user_data;

  if (check_stalled (self))
    self->unanswered = 0;
  if (self->unanswered == 0)
    {
      self->unanswered = g_get_monotonic_time ();
      g_source_set_ready_time (self->late_check, self->unanswered + late_margin_us (self));
    }
  g_signal_emit (self, signals[SIGNAL_SEND], 0, (guint64) g_get_real_time ());
  return G_SOURCE_CONTINUE;
}

/* The margin after a heartbeat we sent is over: nothing since then makes the peer late
 * (unless we were away ourselves and have its frames still to read). */
static gboolean
on_late_check (gpointer user_data)
{
  ZltHeartbeat *self = user_data;

  g_source_set_ready_time (self->late_check, -1);
  if (check_stalled (self))
    self->unanswered = 0;
  if (self->unanswered != 0)
    set_late (self, TRUE);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_deadline (gpointer user_data)
{
  ZltHeartbeat *self = user_data;
  gint64 due;

  check_stalled (self);
  due = self->last_rx + (gint64) self->timeout_ms * 1000;
  if (g_get_monotonic_time () < due)
    {
      g_source_set_ready_time (self->deadline, due);
      return G_SOURCE_CONTINUE;
    }
  g_object_ref (self);
  zlt_heartbeat_stop (self);
  g_signal_emit (self, signals[SIGNAL_TIMEOUT], 0);
  g_object_unref (self);
  return G_SOURCE_REMOVE;
}

static gboolean
dispatch_ready (GSource *source, GSourceFunc callback, gpointer user_data)
{
  return callback (user_data);
}

static GSourceFuncs deadline_funcs = { NULL, NULL, dispatch_ready, NULL, NULL, NULL };

void
zlt_heartbeat_start (ZltHeartbeat *self)
{
  g_return_if_fail (ZLT_IS_HEARTBEAT (self));

  zlt_heartbeat_stop (self);
  self->last_rx = g_get_monotonic_time ();
  self->last_run_mono = self->last_rx;
  self->last_run_real = g_get_real_time ();
  self->tick = g_timeout_source_new (self->interval_ms);
  g_source_set_callback (self->tick, on_tick, self, NULL);
  g_source_attach (self->tick, g_main_context_get_thread_default ());

  self->deadline = g_source_new (&deadline_funcs, sizeof (GSource));
  g_source_set_callback (self->deadline, on_deadline, self, NULL);
  g_source_set_ready_time (self->deadline, self->last_rx + (gint64) self->timeout_ms * 1000);
  g_source_attach (self->deadline, g_main_context_get_thread_default ());

  self->late_check = g_source_new (&deadline_funcs, sizeof (GSource));
  g_source_set_callback (self->late_check, on_late_check, self, NULL);
  g_source_attach (self->late_check, g_main_context_get_thread_default ());
  self->unanswered = 0;
  set_late (self, FALSE);
}

void
zlt_heartbeat_stop (ZltHeartbeat *self)
{
  g_return_if_fail (ZLT_IS_HEARTBEAT (self));
  zlt_source_clear (&self->tick);
  zlt_source_clear (&self->deadline);
  zlt_source_clear (&self->late_check);
}

void
zlt_heartbeat_received (ZltHeartbeat *self)
{
  self->last_rx = g_get_monotonic_time ();
  self->unanswered = 0;
  if (G_UNLIKELY (self->late))
    set_late (self, FALSE);
}

/* Whether a heartbeat we sent went unanswered past its margin (and no frame came since). */
gboolean
zlt_heartbeat_is_late (ZltHeartbeat *self)
{
  g_return_val_if_fail (ZLT_IS_HEARTBEAT (self), FALSE);
  return self->late;
}

void
zlt_heartbeat_acked_us (ZltHeartbeat *self, guint64 timestamp_us)
{
  gint64 now_us = g_get_real_time ();
  gint64 rtt;

  g_return_if_fail (ZLT_IS_HEARTBEAT (self));
  /* a peer echoing nonsense must not produce negative or huge latencies */
  if (timestamp_us > (guint64) now_us
      || (guint64) now_us - timestamp_us > (guint64) 3600 * G_USEC_PER_SEC)
    return;
  rtt = now_us - (gint64) timestamp_us;
  if (rtt != self->latency_us)
    {
      self->latency_us = rtt;
      g_object_notify_by_pspec (G_OBJECT (self), props[PROP_LATENCY_US]);
    }
}

void
zlt_heartbeat_acked (ZltHeartbeat *self, guint64 timestamp)
{
  g_return_if_fail (ZLT_IS_HEARTBEAT (self));
  /* in ms, as a v1 peer echoes it: the latency has the same resolution */
  if (timestamp > G_MAXUINT64 / 1000)
    return;
  zlt_heartbeat_acked_us (self, timestamp * 1000);
}

gint64
zlt_heartbeat_get_latency_us (ZltHeartbeat *self)
{
  g_return_val_if_fail (ZLT_IS_HEARTBEAT (self), -1);
  return self->latency_us;
}

guint
zlt_heartbeat_get_interval_ms (ZltHeartbeat *self)
{
  return self->interval_ms;
}

guint
zlt_heartbeat_get_timeout_ms (ZltHeartbeat *self)
{
  return self->timeout_ms;
}

static void
zlt_heartbeat_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  ZltHeartbeat *self = ZLT_HEARTBEAT (object);

  switch (prop_id)
    {
    case PROP_LATENCY_US:
      g_value_set_int64 (value, self->latency_us);
      break;
    case PROP_LATE:
      g_value_set_boolean (value, self->late);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
zlt_heartbeat_dispose (GObject *object)
{
  zlt_heartbeat_stop (ZLT_HEARTBEAT (object));
  G_OBJECT_CLASS (zlt_heartbeat_parent_class)->dispose (object);
}

static void
zlt_heartbeat_class_init (ZltHeartbeatClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = zlt_heartbeat_get_property;
  object_class->dispose = zlt_heartbeat_dispose;

  props[PROP_LATENCY_US]
      = g_param_spec_int64 ("latency-us", NULL, NULL, -1, G_MAXINT64, -1,
                            G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /**
   * ZltHeartbeat:late:
   * A heartbeat we sent got no frame back within its margin; off again at the next frame.
   */
  props[PROP_LATE]
      = g_param_spec_boolean ("late", NULL, NULL, FALSE,
                              G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, props);

  /**
   * ZltHeartbeat::send:
   * @self: the heartbeat
   * @timestamp_us: Unix time in µs: the frame carries it in ms (v1) and, to a v2
   *   peer, in µs too (TIMESTAMP_US)
   */
  signals[SIGNAL_SEND] = g_signal_new ("send", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                       NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_UINT64);
  /**
   * ZltHeartbeat::timeout:
   * Nothing arrived from the peer within the timeout; the heartbeat has stopped.
   */
  signals[SIGNAL_TIMEOUT] = g_signal_new ("timeout", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                          0, NULL, NULL, NULL, G_TYPE_NONE, 0);
  /**
   * ZltHeartbeat::stalled:
   * @self: the heartbeat
   * @away_us: at least this long (µs) the process did not run
   *
   * Our own timers ran late: the process was stopped or the machine slept. The peer's
   * silence over that time is not held against it: it has a full timeout from now.
   */
  signals[SIGNAL_STALLED] = g_signal_new ("stalled", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                          0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_UINT64);
}

static void
zlt_heartbeat_init (ZltHeartbeat *self)
{
  self->latency_us = -1;
}

ZltHeartbeat *
zlt_heartbeat_new (guint interval_ms, guint timeout_ms)
{
  ZltHeartbeat *self;

  g_return_val_if_fail (interval_ms > 0, NULL);
  g_return_val_if_fail (timeout_ms > 0, NULL);

  self = g_object_new (ZLT_TYPE_HEARTBEAT, NULL);
  self->interval_ms = interval_ms;
  self->timeout_ms = timeout_ms;
  return self;
}
