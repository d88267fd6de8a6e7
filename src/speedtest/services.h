/* services.h - the entry point of each speed test service, called by main.c */
#ifndef DST_SPEEDTEST_SERVICES_H
#define DST_SPEEDTEST_SERVICES_H

/* Each takes argv with argv[0] = the service name and returns the process exit code. */
int up_main(int argc, char **argv);
int api_main(int argc, char **argv);
int web_main(int argc, char **argv);
int logger_main(int argc, char **argv);
int scheduler_main(int argc, char **argv);
int run_main(int argc, char **argv);
int server_main(int argc, char **argv);
int token_main(int argc, char **argv);
int store_main(int argc, char **argv);

#endif
