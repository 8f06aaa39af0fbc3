/** Every `ddpo` subcommand, in the order `--help` lists them. */
import type { CliCommand } from './command';
import { benchBackboneCommand } from './benchBackbone';
import { benchGenerateCommand } from './benchGenerate';
import { benchCommands } from './bench';
import { installCudaCommand } from './installCuda';
import { conformanceCommand } from './conformance';
import { demoCommand } from './demo';
import { doctorCommand } from './doctor';
import { experimentsListCommand, experimentsNewCommand } from './experiments';
import { exportLoraCommand } from './exportLora';
import { exportPreferencesCommand } from './exportPreferences';
import { generateCommand } from './generate';
import { rewardCommands } from './reward';
import { trainCommand } from './train';
import { versionCommand } from './version';

/** All commands `ddpo` dispatches to, in the order `--help` lists them. */
export const commands: CliCommand[] = [
  versionCommand,
  demoCommand,
  experimentsListCommand,
  experimentsNewCommand,
  generateCommand,
  ...rewardCommands,
  trainCommand,
  exportLoraCommand,
  exportPreferencesCommand,
  doctorCommand,
  conformanceCommand,
  benchGenerateCommand,
  benchBackboneCommand,
  ...benchCommands,
  installCudaCommand,
];
