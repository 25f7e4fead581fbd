/* example-echo.h: what the embedding examples share that is not zlayer-tunnel: a
 * local echo service, a blocking echo client run in a thread, and a deadline */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* A TCP echo service on 127.0.0.1, a port the kernel picks; returns that port. */
guint16 example_echo_service_start (GSocketService **service);

/* Connects to 127.0.0.1:@port in a thread, sends @text, reads it back and quits @loop;
 * *@ok tells whether the echo came back intact. */
void example_echo_check_async (guint16 port, const char *text, gboolean *ok, GMainLoop *loop);

/* Quits @loop after @seconds, so an example never hangs; *@timed_out then says so. */
guint example_deadline_add (GMainLoop *loop, guint seconds, gboolean *timed_out);

G_END_DECLS
