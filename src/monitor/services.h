/* services.h - the ping-echo monitor's services, dispatched by main.c */
#ifndef DST_MONITOR_SERVICES_H
#define DST_MONITOR_SERVICES_H

/* `dstmc machine`: the demo service behind the monitor (the original Machine1/Machine2). */
int machine_main(int argc, char **argv);

/* `dstmc monitor`: health checks, failover to the first backend up, the live status page. */
int monitor_main(int argc, char **argv);

#endif
