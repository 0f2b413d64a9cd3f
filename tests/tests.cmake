# One line per test file: sp_add_test(NAME test_x SOURCES unit/test_x.c TIMEOUT s)
sp_add_test(NAME test_waker SOURCES unit/test_waker.c TIMEOUT 30)
sp_add_test(NAME test_async SOURCES unit/test_async.c TIMEOUT 30)
sp_add_test(NAME test_join SOURCES unit/test_join.c TIMEOUT 30)
sp_add_test(NAME test_oneshot SOURCES unit/test_oneshot.c TIMEOUT 30)
sp_add_test(NAME test_shutdown SOURCES unit/test_shutdown.c TIMEOUT 60)
sp_add_test(NAME test_lost_wakeup SOURCES stress/test_lost_wakeup.c TIMEOUT 120)
sp_add_test(NAME test_steal SOURCES stress/test_steal.c TIMEOUT 60)
sp_add_test(NAME test_timer_shards SOURCES stress/test_timer_shards.c TIMEOUT 60)
sp_add_test(NAME test_task_table SOURCES stress/test_task_table.c TIMEOUT 60)
sp_add_test(NAME test_task_memory SOURCES unit/test_task_memory.c TIMEOUT 60)
sp_add_test(NAME test_introspection SOURCES unit/test_introspection.c TIMEOUT 30)
sp_add_test(NAME test_timer_wheel SOURCES unit/test_timer_wheel.c TIMEOUT 60)
sp_add_test(NAME test_time SOURCES unit/test_time.c TIMEOUT 60)
sp_add_test(NAME test_sync SOURCES unit/test_sync.c TIMEOUT 30)
sp_add_test(NAME test_combinators SOURCES unit/test_combinators.c TIMEOUT 30)
sp_add_test(NAME test_net SOURCES unit/test_net.c TIMEOUT 60)
sp_add_test(NAME test_net_udp_unix SOURCES unit/test_udp_unix.c TIMEOUT 60)
sp_add_test(NAME test_blocking SOURCES unit/test_blocking.c TIMEOUT 30)
sp_add_test(NAME test_signal SOURCES unit/test_signal.c TIMEOUT 30)
sp_add_test(NAME test_trace_ring SOURCES stress/test_trace_ring.c TIMEOUT 60)
sp_add_test(NAME test_trace_segment SOURCES unit/test_trace_segment.c TIMEOUT 60)
sp_add_test(NAME test_trace_events SOURCES unit/test_trace_events.c TIMEOUT 30)
sp_add_test(NAME test_trace_stream SOURCES unit/test_trace_stream.c TIMEOUT 30)
target_link_libraries(test_trace_stream PRIVATE spindle_console)

# eBPF tracer end-to-end tests (tests/bpf/trace_test.sh): root and kernel BTF
# needed; skipped (77) otherwise, a failure with SPINDLE_REQUIRE_BPF=1.
# RUN_SERIAL: the verdicts (on-CPU vs preempted) must not depend on the
# suite's own stress tests competing for the CPUs.
add_executable(late_target bpf/late_target.c)
target_link_libraries(late_target PRIVATE spindle_obj Threads::Threads)
set_target_properties(late_target PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
if(TARGET blocking)
  foreach(c blocking tidkeys fixed late futex stuck errors top demo)
    add_test(NAME trace_${c} COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/bpf/trace_test.sh ${c}
      $<TARGET_FILE:spindle> $<TARGET_FILE:blocking> $<TARGET_FILE:late_target>)
    math(EXPR t "30 * ${SP_TEST_TIMEOUT_MULT}")
    set_tests_properties(trace_${c} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT ${t} RUN_SERIAL TRUE)
    if(SP_SANITIZE)
      set_tests_properties(trace_${c} PROPERTIES ENVIRONMENT "SP_SANITIZED=1")
    endif()
  endforeach()
  # spindle trace -o: findings in a recording, read by report and export
  # (tests/bpf/trace_record.sh).
  foreach(c rings norings)
    add_test(NAME trace_record_${c} COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/bpf/trace_record.sh
      ${c} $<TARGET_FILE:spindle> $<TARGET_FILE:blocking>)
    math(EXPR t "40 * ${SP_TEST_TIMEOUT_MULT}")
    set_tests_properties(trace_record_${c} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT ${t} RUN_SERIAL TRUE)
    if(SP_SANITIZE)
      set_tests_properties(trace_record_${c} PROPERTIES ENVIRONMENT "SP_SANITIZED=1")
    endif()
  endforeach()
endif()

# spindle record / report / export, end to end on the examples (tests/e2e).
if(SP_BUILD_EXAMPLES)
  add_test(NAME e2e_record COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/e2e/record.sh
           $<TARGET_FILE:spindle> ${CMAKE_BINARY_DIR}/bin)
  math(EXPR t "30 * ${SP_TEST_TIMEOUT_MULT}")
  set_tests_properties(e2e_record PROPERTIES TIMEOUT ${t})
  # live targets: SIGINT forwarding, -p attach; report windows, timer victims
  add_test(NAME e2e_record_live COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/e2e/record_live.sh
           $<TARGET_FILE:spindle> ${CMAKE_BINARY_DIR}/bin)
  math(EXPR t "60 * ${SP_TEST_TIMEOUT_MULT}")
  set_tests_properties(e2e_record_live PROPERTIES TIMEOUT ${t})
endif()
sp_add_test(NAME test_top_model SOURCES unit/test_top_model.c TIMEOUT 30)
target_link_libraries(test_top_model PRIVATE spindle_console)
sp_add_test(NAME test_replay SOURCES unit/test_replay.c TIMEOUT 30)
target_link_libraries(test_replay PRIVATE spindle_console)
# spindle top end to end: the ncurses screen in tmux against the examples.
add_test(NAME e2e_top_tmux COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/e2e/top_tmux.sh
  $<TARGET_FILE:spindle> $<TARGET_FILE_DIR:demo>)
math(EXPR t "150 * ${SP_TEST_TIMEOUT_MULT}")
set_tests_properties(e2e_top_tmux PROPERTIES TIMEOUT ${t} SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)
# spindle top --replay: the console over recordings of the examples (batch,
# bad input, and the interactive cursor keys in tmux when it is there).
if(SP_BUILD_EXAMPLES)
  add_test(NAME e2e_top_replay COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/e2e/top_replay.sh
    $<TARGET_FILE:spindle> ${CMAKE_BINARY_DIR}/bin)
  math(EXPR t "60 * ${SP_TEST_TIMEOUT_MULT}")
  set_tests_properties(e2e_top_replay PROPERTIES TIMEOUT ${t})
endif()

# USDT end to end: usdt_target under bpftrace with probes/*.bt (skips, exit
# 77, without bpftrace, root or <sys/sdt.h>; SPINDLE_REQUIRE_BPF=1 makes a
# skip a failure).
add_executable(usdt_target e2e/usdt_target.c)
target_link_libraries(usdt_target PRIVATE spindle_static)
set_target_properties(usdt_target PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME test_usdt COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/e2e/test_usdt.sh
  $<TARGET_FILE:usdt_target> ${PROJECT_SOURCE_DIR}/probes)
if(SP_HAVE_SDT)
  set_tests_properties(test_usdt PROPERTIES ENVIRONMENT "SP_HAVE_SDT=1")
endif()
set_tests_properties(test_usdt PROPERTIES TIMEOUT 60 SKIP_RETURN_CODE 77)
