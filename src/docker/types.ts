// The parts of Docker's JSON that stevedore reads. Docker sends more; we keep only what we use.

export interface ContainerSummary {
  Id: string;
  Names: string[];
  Image: string;
  State: string;
  Labels: Record<string, string> | null;
  Created: number;
}

export interface ContainerInspect {
  Id: string;
  Name: string; // with leading "/"
  Created: string;
  RestartCount?: number;
  State: {
    Status: string; // created | running | paused | restarting | removing | exited | dead
    Running: boolean;
    Paused: boolean;
    Restarting: boolean;
    ExitCode: number;
    StartedAt: string; // "0001-01-01T00:00:00Z" when never started
    FinishedAt: string;
    Health?: { Status: string; FailingStreak?: number };
  };
  Config: {
    Image: string;
    Labels: Record<string, string> | null;
    Env: string[] | null;
    Healthcheck?: { Test?: string[] } | null;
  };
  HostConfig: { RestartPolicy?: { Name: string; MaximumRetryCount?: number } };
  NetworkSettings: {
    Networks: Record<string, { IPAddress: string; NetworkID?: string } | undefined> | null;
  };
  [key: string]: unknown;
}

export interface DockerEvent {
  Type: string; // "container"
  Action: string; // "start", "health_status: healthy", ...
  Actor: { ID: string; Attributes?: Record<string, string> };
  time: number;
  timeNano: number;
  [key: string]: unknown;
}

export type CreateContainerBody = Record<string, unknown>;
