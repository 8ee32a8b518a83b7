<?php

declare(strict_types=1);

namespace NppSecure\CacheClient;

use NppSecure\CacheClient\Exception\InvalidInputException;
use NppSecure\CacheClient\Exception\JobException;
use NppSecure\CacheClient\Exception\ToolFailedException;

/**
 * Starts, watches and stops cache-preload jobs through safexec.
 *
 * One background job at a time per state directory. The state directory (owned by the PHP user, mode
 * 0700) keeps the job's PID and start time, so a later request — in another PHP-FPM worker, or after
 * the pool was restarted — finds out whether the job still runs and reads its progress.
 */
final class Preloader
{
    private const STATE = 'preload.json';
    private const EVENTS = 'preload.jsonl';
    private const ERRORS = 'preload.err';
    private const LOCK = 'preload.lock';

    /** @var Safexec */
    private $safexec;
    /** @var string */
    private $stateDir;
    /** @var ProcessInfo */
    private $proc;

    /**
     * @param string $stateDir a directory for the job's state and output (created 0700 if missing)
     * @throws InvalidInputException
     */
    public function __construct(Safexec $safexec, string $stateDir, ?ProcessInfo $proc = null)
    {
        if ($stateDir === '' || $stateDir[0] !== '/') {
            throw new InvalidInputException(sprintf('state directory %s is not absolute', Url::show($stateDir)));
        }
        $stateDir = rtrim($stateDir, '/');
        if (!is_dir($stateDir) && !@mkdir($stateDir, 0700, true) && !is_dir($stateDir)) {
            throw new InvalidInputException("cannot create the state directory $stateDir");
        }
        if (is_link($stateDir) || !is_writable($stateDir)) {
            throw new InvalidInputException("state directory $stateDir is a symlink or not writable by this user");
        }
        $this->safexec = $safexec;
        $this->stateDir = $stateDir;
        $this->proc = $proc ?? new ProcessInfo();
    }

    /**
     * Starts a background preload and returns it (the PID is the crawler's).
     *
     * @throws JobException a job started from this state directory still runs
     * @throws ToolFailedException safexec or the crawler refused the job (its message)
     */
    public function start(PreloadOptions $options): PreloadJob
    {
        $lock = $this->lock();
        try {
            $prev = $this->current();
            if ($prev !== null && $this->isRunning($prev)) {
                throw new JobException("a preload job is already running (PID {$prev->pid})");
            }
            $events = $this->stateDir . '/' . self::EVENTS;
            $errors = $this->stateDir . '/' . self::ERRORS;
            foreach ([$events, $errors] as $f) {
                // Fresh files owned by this user: a leftover symlink is replaced, never followed.
                @unlink($f);
                if (@touch($f) === false || !@chmod($f, 0600)) {
                    throw new JobException("cannot create $f");
                }
            }
            $expected = $options->expectedTotal() ?? $this->lastTotal();
            $startedAt = microtime(true);
            $r = $this->safexec->spawnDetached($options->toArgs(), $events, $errors);
            $job = new PreloadJob($r['pid'], $r['start_ticks'], $startedAt, $events, $errors, $expected, $options->targets());
            $this->writeState($job);
            return $job;
        } finally {
            flock($lock, LOCK_UN);
            fclose($lock);
        }
    }

    /** The job recorded by the last start (running or not), or null if none was started. */
    public function current(): ?PreloadJob
    {
        $text = @file_get_contents($this->stateDir . '/' . self::STATE);
        if ($text === false) {
            return null;
        }
        $a = json_decode($text, true);
        return is_array($a) ? PreloadJob::fromArray($a) : null;
    }

    /** Whether the job (default: the current one) still runs: same PID, same start time, not a zombie. */
    public function isRunning(?PreloadJob $job = null): bool
    {
        $job = $job ?? $this->current();
        return $job !== null && $this->proc->running($job->pid, $job->startTicks);
    }

    /**
     * Progress of the job (default: the current one): pages done, HIT/MISS counts, errors, ETA.
     *
     * @throws JobException no job was ever started here
     */
    public function progress(?PreloadJob $job = null): PreloadProgress
    {
        $job = $job ?? $this->current();
        if ($job === null) {
            throw new JobException('no preload job was started');
        }
        $running = $this->isRunning($job);
        $p = ProgressParser::parse((string) @file_get_contents($job->eventsFile));
        $p->running = $running;
        $p->expectedTotal = $job->expectedTotal;
        if (!$p->finished) {
            $p->elapsed = max(0.0, microtime(true) - $job->startedAt);
        }
        if ($running && $p->expectedTotal !== null && $p->pages > 0 && $p->elapsed > 0) {
            $rate = $p->pages / $p->elapsed;
            $left = $p->expectedTotal - $p->pages;
            $p->eta = $left > 0 ? $left / $rate : null;
        }
        if (!$running && !$p->finished) {
            $p->message = (new CommandResult(0, '', (string) @file_get_contents($job->errorsFile)))->message();
        }
        if ($p->finished && isset($p->summary['pages']) && is_int($p->summary['pages']) && $p->summary['pages'] > 0) {
            $this->rememberTotal($p->summary['pages']);
        }
        return $p;
    }

    /**
     * Stops the job (default: the current one) with `safexec --kill=<pid>` and waits until it is gone.
     * Returns false if it had already finished.
     *
     * @throws ToolFailedException safexec refused (e.g. the PID is not this user's job)
     */
    public function stop(?PreloadJob $job = null, float $wait = 5.0): bool
    {
        $job = $job ?? $this->current();
        if ($job === null || !$this->isRunning($job)) {
            return false;
        }
        $r = $this->safexec->run(['--kill=' . $job->pid], 10.0);
        if ($r->exitCode !== 0 || strpos($r->stdout, 'Killed PID') === false) {
            if (!$this->isRunning($job)) {
                return false; // it finished between the check and the kill
            }
            throw new ToolFailedException('safexec', $r->exitCode, $r->message());
        }
        $deadline = microtime(true) + $wait;
        while ($this->isRunning($job)) {
            if (microtime(true) > $deadline) {
                throw new ToolFailedException('safexec', 0, "PID {$job->pid} was signalled but still runs after {$wait} s");
            }
            usleep(20000);
        }
        return true;
    }

    /**
     * Preloads $options synchronously (the re-warm after a purge) and returns the final progress.
     * Pages that failed are in the result; a refused or crashed run throws with the tool's message.
     *
     * @throws ToolFailedException
     */
    public function run(PreloadOptions $options, float $timeout = 120.0): PreloadProgress
    {
        $args = $options->toArgs();
        $r = $this->safexec->run($args, $timeout, 'cache-preload');
        $p = ProgressParser::parse($r->stdout);
        // 0: every page 2xx; 8: some pages failed (listed in the progress). Anything else is an error.
        if (($r->exitCode !== 0 && $r->exitCode !== 8) || !$p->finished) {
            throw new ToolFailedException('cache-preload', $r->exitCode, $r->message());
        }
        return $p;
    }

    /** @return resource */
    private function lock()
    {
        $h = @fopen($this->stateDir . '/' . self::LOCK, 'c');
        if ($h === false || !flock($h, LOCK_EX)) {
            throw new JobException('cannot lock ' . $this->stateDir . '/' . self::LOCK);
        }
        return $h;
    }

    private function writeState(PreloadJob $job): void
    {
        $tmp = $this->stateDir . '/' . self::STATE . '.' . getmypid() . '.tmp';
        $data = json_encode($job->toArray(), JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
        if ($data === false || @file_put_contents($tmp, $data . "\n") === false || !@rename($tmp, $this->stateDir . '/' . self::STATE)) {
            @unlink($tmp);
            throw new JobException("cannot write the job state in {$this->stateDir}");
        }
    }

    private function lastTotal(): ?int
    {
        $t = @file_get_contents($this->stateDir . '/last-total');
        return ($t !== false && ctype_digit(trim($t)) && (int) $t > 0) ? (int) $t : null;
    }

    private function rememberTotal(int $pages): void
    {
        if ($this->lastTotal() !== $pages) {
            @file_put_contents($this->stateDir . '/last-total', $pages . "\n");
        }
    }
}
